"""Prompt compilation on the AI gateway: a body with ``prompt_id`` becomes the saved prompt, compiled.

``POST /v1/chat/completions`` and ``/v1/responses`` may carry ``prompt_id``, ``environment``,
``version_id`` and ``inputs`` (Helicone's prompt integration); this step reads the version they
name, assembles the request (:mod:`heliport.prompts.assemble`) and hands the gateway the compiled
body, before the safety checks, which therefore screen the compiled prompt. The pass-through proxy
never compiles: a ``prompt_id`` there is the provider's business and goes on unchanged.

Cost. ``wanted`` sees the exchange: off the AI gateway it is one attribute test; on it, with a store
configured, it tests ``b'"prompt_id"' in body``, a byte search
(``bytes.__contains__``; measured on the 2-core test machine: 1.5 us for a 3 KB chat body, 0.5-0.8
ms for 1 MB, against 1.0 ms for the msgspec decode of that body the gateway makes anyway). A body
without the key is not decoded, costs no read and gets no fact. A quoted ``"prompt_id"`` elsewhere
(a nested key) costs one decode, then goes on unchanged.

Reads. The version is one :meth:`~heliport.prompts.PromptReader.resolve`, through
:class:`VersionCache`: an in-process cache keyed by (organisation, prompt, environment or version),
answers kept for ``HELIPORT_PROMPT_CACHE_TTL`` (misses the shorter of 2 s and that) as the
authenticator keeps keys, and concurrent misses of the same key sharing one read. A saved version's
partials (``{{hcp:...}}``) are one more cached read per distinct (prompt, environment) they
reference, made concurrently.

Failure behaviour. A prompt the caller asked for cannot be skipped (the provider would get
``prompt_id`` and no prompt), so nothing here fails open: an unknown prompt, version or environment
(or partial) is a 404 ``prompt_not_found`` naming the field; a bad field or a missing or mistyped
input is a 400 naming it (``inputs.<name>``); a prompt store that cannot be read is a 503
``prompt_store_unavailable`` (the reason, never a secret, on the row's ``errors``). A body that is
not JSON, or nests too deep, goes on untouched for the gateway to refuse with its own 400.

On the row: the fact ``prompt`` (``id``, ``version_id``, ``version`` as ``major.minor``,
``environment`` as requested, ``inputs`` unless ``Helicone-Omit-Request``, ``partials``,
``store_reads``: how many reads missed the cache), and the record's ``prompt_id`` is the compiled
prompt's (a ``Helicone-Prompt-Id`` header that differs stays on the fact as ``label``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec

from heliport.errors import HeliportError, json_depth_exceeds
from heliport.exchange import PROCEED, Exchange, StepResult, describe
from heliport.prompts import PRODUCTION, PromptReader, PromptVersion
from heliport.prompts.assemble import (
    PartialRef,
    PromptCall,
    UnknownPromptError,
    assemble_chat,
    assemble_responses,
    partial_refs,
    partial_text,
    read_call,
    referenced_versions,
    strip_prompt_fields,
)
from heliport.steps import StepServices

__all__ = ["DEFAULT_TTL", "MISS_TTL", "PromptCompilation", "PromptStoreUnavailableError", "VersionCache"]

#: How long a version read is trusted: a moved environment takes effect within this many seconds.
DEFAULT_TTL = 10.0
#: How long "no such prompt/version/environment" is trusted (short: a prompt just created works soon).
MISS_TTL = 2.0
#: Entries kept before the cache starts over (each is one version body; bounded memory).
_MAX_CACHED = 4096
_KEY = b'"prompt_id"'

#: (organisation, prompt id, environment, version id): exactly one of the last two is set.
CacheKey = tuple[str, str, str | None, str | None]


class PromptStoreUnavailableError(HeliportError):
    """The prompt store could not be read: the request cannot be compiled, and cannot go on without it."""

    status = 503
    code = "prompt_store_unavailable"


class VersionCache:
    """Prompt versions by (organisation, prompt, environment or version), for ``ttl`` seconds.

    Misses are kept ``miss_ttl`` seconds. Concurrent requests for a key that is not cached share one
    read (a burst of cold requests is one store call); the read runs as its own task, so a caller that
    disconnects does not cancel it for the others.
    """

    def __init__(
        self,
        reader: PromptReader,
        *,
        ttl: float = DEFAULT_TTL,
        miss_ttl: float = MISS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._clock = clock
        self._entries: dict[CacheKey, tuple[float, PromptVersion | None]] = {}
        self._pending: dict[CacheKey, asyncio.Task[PromptVersion | None]] = {}

    def clear(self) -> None:
        self._entries.clear()

    async def get(self, key: CacheKey) -> tuple[PromptVersion | None, bool]:
        """The version (None: it does not exist) and whether this call made a store read."""
        cached = self._entries.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1], False
        task = self._pending.get(key)
        leader = task is None
        if task is None:
            org_id, prompt_id, environment, version_id = key
            task = asyncio.ensure_future(
                self._reader.resolve(org_id, prompt_id, version_id=version_id, environment=environment)
            )
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task), leader

    def _settle(self, key: CacheKey, task: asyncio.Task[PromptVersion | None]) -> None:
        self._pending.pop(key, None)
        if task.cancelled() or task.exception() is not None:  # retrieved here: no "never retrieved" warning
            return
        version = task.result()
        if len(self._entries) >= _MAX_CACHED:
            self._entries.clear()
        self._entries[key] = (self._clock() + (self._ttl if version is not None else self._miss_ttl), version)


def cache_key(org_id: str, call: PromptCall) -> CacheKey:
    """The one version a call names: its environment, else its version id, else production."""
    if call.environment is not None:
        return (org_id, call.prompt_id, call.environment, None)
    if call.version_id is not None:
        return (org_id, call.prompt_id, None, call.version_id)
    return (org_id, call.prompt_id, PRODUCTION, None)


def _not_found(call: PromptCall) -> UnknownPromptError:
    if call.environment is not None:
        return UnknownPromptError(
            f"Prompt {call.prompt_id!r} has no version in environment {call.environment!r} (or no such prompt)",
            param="environment",
        )
    if call.version_id is not None:
        return UnknownPromptError(
            f"Prompt {call.prompt_id!r} has no version {call.version_id!r} (or no such prompt)", param="version_id"
        )
    return UnknownPromptError(
        f"No prompt {call.prompt_id!r} with a production version in this organisation", param="prompt_id"
    )


class PromptCompilation:
    """The pre-forward step that compiles ``prompt_id`` requests on the AI gateway (first in the stage)."""

    def __init__(self, services: StepServices, *, ttl: float | None = None, miss_ttl: float = MISS_TTL) -> None:
        """``ttl`` defaults to the setting ``prompt_cache_ttl`` (misses are kept the shorter of the two)."""
        if ttl is None:
            ttl = services.settings.prompt_cache_ttl
        miss_ttl = min(miss_ttl, ttl)
        self._reader = services.prompts
        self._max_depth = services.settings.max_json_depth
        self.cache = None if self._reader is None else VersionCache(self._reader, ttl=ttl, miss_ttl=miss_ttl)

    def wanted(self, exchange: Exchange, /) -> bool:
        # The body asks, not a header: only on the AI gateway, and only when its bytes name the key
        # (a search of the raw body; the decode that would settle it comes in __call__).
        return exchange.via_gateway and self.cache is not None and _KEY in exchange.body

    async def __call__(self, exchange: Exchange, /) -> StepResult:
        if not exchange.via_gateway or _KEY not in exchange.body or self.cache is None:
            return PROCEED
        try:
            body = msgspec.json.decode(exchange.body)
        except (msgspec.DecodeError, RecursionError):
            return PROCEED  # the gateway refuses it with its own 400
        if not isinstance(body, dict) or "prompt_id" not in body or json_depth_exceeds(body, self._max_depth):
            return PROCEED
        call = read_call(body)
        if call is None:  # "prompt_id": null: nothing to compile, but the prompt fields still stay here
            return StepResult(body=msgspec.json.encode(strip_prompt_fields(body)))
        version, reads = await self._read(cache_key(exchange.key.org_id, call))
        if version is None:
            raise _not_found(call)
        refs = partial_refs(version.body, PRODUCTION)
        partials, partial_reads = await self._partials(exchange.key.org_id, refs)
        assemble = assemble_responses if exchange.path.endswith("/responses") else assemble_chat
        compiled = assemble(version.body, body, call.inputs, partials, default_environment=PRODUCTION)
        options = exchange.options
        fact: dict[str, Any] = {
            "id": call.prompt_id,
            "version_id": version.id,
            "version": f"{version.major_version}.{version.minor_version}",
            "environment": call.environment if call.environment or call.version_id else PRODUCTION,
        }
        if not options.omit_request:
            fact["inputs"] = call.inputs
        if refs:
            fact["partials"] = [
                {"prompt_id": r.prompt_id, "index": r.index, "environment": r.environment} for r in refs
            ]
        fact["store_reads"] = reads + partial_reads
        if options.prompt_id is not None and options.prompt_id != call.prompt_id:
            fact["label"] = options.prompt_id  # the legacy header's label, kept beside the real id
        # The record's prompt_id comes from the options (Helicone-Prompt-Id): the compiled prompt's id
        # is the one this request used.
        exchange.options = msgspec.structs.replace(options, prompt_id=call.prompt_id)
        return StepResult(body=msgspec.json.encode(compiled), facts={"prompt": fact})

    async def _read(self, key: CacheKey) -> tuple[PromptVersion | None, int]:
        assert self.cache is not None
        try:
            version, read = await self.cache.get(key)
        except Exception as exc:
            raise PromptStoreUnavailableError(f"The prompt store could not be read: {describe(exc)}") from None
        return version, int(read)

    async def _partials(self, org_id: str, refs: list[PartialRef]) -> tuple[dict[PartialRef, str], int]:
        """The text of every partial, reading each referenced (prompt, environment) once, concurrently."""
        if not refs:
            return {}, 0
        wanted = referenced_versions(refs)
        found = await asyncio.gather(*(self._read((org_id, pid, env, None)) for pid, env in wanted))
        versions: dict[tuple[str, str], PromptVersion] = {}
        for (pid, env), (version, _) in zip(wanted, found, strict=True):
            if version is None:
                raise UnknownPromptError(
                    f"The prompt uses a partial of prompt {pid!r}, which has no version in environment {env!r}",
                    param="prompt_id",
                )
            versions[(pid, env)] = version
        texts = {
            ref: partial_text(versions[(ref.prompt_id, ref.environment)].body.get("messages"), ref) for ref in refs
        }
        return texts, sum(read for _, read in found)
