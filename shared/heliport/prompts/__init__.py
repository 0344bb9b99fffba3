"""Prompts: versioned prompt bodies with environments (Helicone's Prompts 2025), their storage, and
their compilation into a chat request on the AI gateway.

* :mod:`.store`: the :class:`PromptStore` port and its SQLite and DynamoDB adapters;
* :mod:`.assemble`: a saved version plus a request's ``inputs`` -> the request the provider gets.

This module holds the records both sides share and the read side of the port that the hot path
uses (:class:`PromptReader`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

__all__ = ["PRODUCTION", "Prompt", "PromptReader", "PromptVersion"]

#: The environment a request gets when it names neither an environment nor a version.
PRODUCTION = "production"


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """A prompt: a name and tags over a line of versions. Ids are Helicone-style short ids."""

    id: str
    org_id: str
    name: str
    tags: tuple[str, ...] = ()
    created_at: datetime


class PromptVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One saved version of a prompt: its body (an OpenAI chat completion request, possibly with
    ``{{hc:name:type}}`` variables and ``{{hcp:...}}`` partials) and where it sits in the line."""

    id: str
    prompt_id: str
    org_id: str
    major_version: int
    minor_version: int
    commit_message: str = ""
    #: The environments that currently point at this version (each environment points at one version).
    environments: tuple[str, ...] = ()
    created_at: datetime
    #: The body's ``model``, kept apart for listings.
    model: str | None = None
    body: dict[str, Any] = msgspec.field(default_factory=dict)


class PromptReader(Protocol):
    """What the AI gateway needs of the prompt store: one lookup per compiled request."""

    async def resolve(
        self, org_id: str, prompt_id: str, *, version_id: str | None = None, environment: str | None = None
    ) -> PromptVersion | None:
        """The version a request names: ``environment`` wins over ``version_id``; with neither, the
        production version. None when the prompt, the version or the environment does not exist in
        this organisation."""
        ...
