"""The pre-forward checks Helicone's headers ask for, one module each, run by :mod:`heliport.exchange`.

Each check is a :class:`~heliport.exchange.RequestStep`: ``wanted`` reads the request's parsed
headers (so a request that asks for none pays one attribute test per check), and the call may
answer the request itself (a flagged prompt: 400), rewrite its body (a trimmed conversation), or
add what it found to the log record. :func:`heliport.steps.stage.default_steps` fixes their order:
the safety checks screen what the caller sent before anything is trimmed.

* :mod:`.moderation`: ``Helicone-Moderations-Enabled``, OpenAI's moderation endpoint;
* :mod:`.llm_security`: ``Helicone-LLM-Security-Enabled`` / ``-Advanced``, prompt-injection and
  safety classifiers;
* :mod:`.token_limit`: ``Helicone-Token-Limit-Exception-Handler``, fit the input to the model;
* :mod:`.prompts`: a body's ``prompt_id`` on the AI gateway, compiled from the saved prompt (first,
  so the checks screen the compiled prompt; it is asked for by the body, not a header).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from heliport.config import Settings
from heliport.proxy.transport import UpstreamTransport

if TYPE_CHECKING:
    from heliport.gateway.providers import Accounts
    from heliport.gateway.registry import Registry
    from heliport.prompts import PromptReader

__all__ = ["StepServices"]


@dataclass(frozen=True, slots=True)
class StepServices:
    """What the checks call out with: the app's settings, its pooled upstream client, the
    deployment's provider accounts (the AI gateway's, read once per container), and the app's model
    registry (read on first use; None: the packaged one), and the prompt store the AI gateway
    compiles ``prompt_id`` requests from (None: no prompt compilation)."""

    settings: Settings
    transport: Callable[[], UpstreamTransport]
    accounts: Callable[[], Awaitable[Accounts]]
    registry: Callable[[], Registry] | None = None
    prompts: PromptReader | None = None
