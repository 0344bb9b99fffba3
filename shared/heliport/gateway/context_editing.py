"""Helicone's ``context_editing`` request field, read once and rendered as Claude's context management.

Helicone's gateway takes one provider-neutral object (``gateway/concepts/context-editing``)::

    {"enabled": true,
     "clear_tool_uses": {"trigger": 100000, "keep": 5, "clear_at_least": 20000,
                         "exclude_tools": ["read_config"], "clear_tool_inputs": true},
     "clear_thinking": {"keep": 3}}          # or {"keep": "all"}

and Claude wants it as ``context_management.edits`` (Anthropic's context-editing beta, switched on
by the ``context-management-2025-06-27`` beta flag), where every number is a typed object::

    {"edits": [{"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 3}},
               {"type": "clear_tool_uses_20250919",
                "trigger": {"type": "input_tokens", "value": 100000},
                "keep": {"type": "tool_uses", "value": 5},
                "clear_at_least": {"type": "input_tokens", "value": 20000},
                "exclude_tools": ["read_config"], "clear_tool_inputs": true}]}

Decisions:

* ``enabled`` is required and must be a boolean (Helicone's type has it required); ``enabled: false``
  turns the feature off, so nothing is sent and any provider can take the request.
* Enabled with neither strategy means ``clear_tool_uses: {}`` (Anthropic's defaults), as the doc says.
* ``clear_thinking`` goes first in ``edits``: Anthropic refuses the two strategies in the other order.
* The field is Claude's alone. Helicone's doc says other providers ignore it; heliport answers a 400
  naming ``context_editing`` instead, because a caller who asked for old tool results to be cleared
  and silently got a full-price, full-context request has lost what it relied on. With failover the
  gateway's usual rule applies (a candidate whose translation 400s is skipped): candidates that
  cannot honour it are passed over, and the request is a 400 only when none can.

Every malformed shape is a 400 naming the field (``context_editing.clear_tool_uses.keep``). The three
renderers are what each Claude transport needs: :func:`anthropic_context_management` for the body
(Anthropic's own API and Claude on Vertex AI both take it there), :data:`BETA` for the
``anthropic-beta`` header (or Vertex/Bedrock's ``anthropic_beta`` body list), and
:func:`bedrock_fields` for Converse's ``additionalModelRequestFields``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from heliport.errors import InvalidBodyError
from heliport.gateway.chat import JsonObj

__all__ = [
    "BETA",
    "FIELD",
    "ClearThinking",
    "ClearToolUses",
    "ContextEditing",
    "anthropic_context_management",
    "bedrock_fields",
    "merge_beta_header",
    "read_context_editing",
    "refuse_context_editing",
    "required_betas",
]

#: The request field, as Helicone names it.
FIELD: Final = "context_editing"
#: Anthropic's beta flag for context management (``anthropic-beta`` header, or ``anthropic_beta`` in a body).
BETA: Final = "context-management-2025-06-27"
_CLEAR_TOOL_USES: Final = "clear_tool_uses_20250919"
_CLEAR_THINKING: Final = "clear_thinking_20251015"

_TOOL_USES_KEYS = frozenset({"trigger", "keep", "clear_at_least", "exclude_tools", "clear_tool_inputs"})
_THINKING_KEYS = frozenset({"keep"})
_TOP_KEYS = frozenset({"enabled", "clear_tool_uses", "clear_thinking"})


@dataclass(frozen=True, slots=True)
class ClearToolUses:
    """Clear old tool results once the input grows past ``trigger`` tokens; None means Anthropic's default."""

    trigger: int | None = None
    keep: int | None = None
    clear_at_least: int | None = None
    exclude_tools: tuple[str, ...] | None = None
    clear_tool_inputs: bool | None = None


@dataclass(frozen=True, slots=True)
class ClearThinking:
    """Keep the thinking blocks of the last ``keep`` assistant turns (or all); None means Anthropic's default."""

    keep: int | Literal["all"] | None = None


@dataclass(frozen=True, slots=True)
class ContextEditing:
    """An enabled ``context_editing`` request: at least one strategy, as read."""

    clear_tool_uses: ClearToolUses | None
    clear_thinking: ClearThinking | None


def read_context_editing(chat: JsonObj) -> ContextEditing | None:
    """The request's ``context_editing``, validated; None when absent or ``enabled: false``."""
    raw = chat.get(FIELD)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidBodyError("context_editing must be an object.", param=FIELD)
    _no_unknown(raw, _TOP_KEYS, FIELD)
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidBodyError("context_editing.enabled is required and must be a boolean.", param=f"{FIELD}.enabled")
    tool_uses = _clear_tool_uses(raw.get("clear_tool_uses"))
    thinking = _clear_thinking(raw.get("clear_thinking"))
    if not enabled:
        return None
    if tool_uses is None and thinking is None:
        tool_uses = ClearToolUses()  # the documented default: clear tool uses with Anthropic's settings
    return ContextEditing(tool_uses, thinking)


def refuse_context_editing(chat: JsonObj, provider: str) -> None:
    """A 400 naming ``context_editing`` when it is enabled (and well-formed) but ``provider`` is not Claude."""
    if read_context_editing(chat) is not None:
        raise InvalidBodyError(
            f"context_editing is supported only for Claude models (Anthropic, Bedrock, Vertex AI); "
            f"{provider} cannot honour it. Remove it or route to a Claude model.",
            param=FIELD,
        )


def anthropic_context_management(editing: ContextEditing) -> JsonObj:
    """Claude's ``context_management`` object: ``clear_thinking`` first, as Anthropic requires."""
    edits: list[JsonObj] = []
    if editing.clear_thinking is not None:
        edit: JsonObj = {"type": _CLEAR_THINKING}
        keep = editing.clear_thinking.keep
        if keep == "all":
            edit["keep"] = "all"
        elif keep is not None:
            edit["keep"] = {"type": "thinking_turns", "value": keep}
        edits.append(edit)
    if editing.clear_tool_uses is not None:
        clear = editing.clear_tool_uses
        edit = {"type": _CLEAR_TOOL_USES}
        if clear.trigger is not None:
            edit["trigger"] = {"type": "input_tokens", "value": clear.trigger}
        if clear.keep is not None:
            edit["keep"] = {"type": "tool_uses", "value": clear.keep}
        if clear.clear_at_least is not None:
            edit["clear_at_least"] = {"type": "input_tokens", "value": clear.clear_at_least}
        if clear.exclude_tools is not None:
            edit["exclude_tools"] = list(clear.exclude_tools)
        if clear.clear_tool_inputs is not None:
            edit["clear_tool_inputs"] = clear.clear_tool_inputs
        edits.append(edit)
    return {"edits": edits}


def bedrock_fields(editing: ContextEditing) -> JsonObj:
    """Converse's ``additionalModelRequestFields`` for Claude on Bedrock: the beta flag rides in the body."""
    return {"anthropic_beta": [BETA], "context_management": anthropic_context_management(editing)}


def required_betas(native: JsonObj) -> list[str]:
    """The Anthropic beta flags a translated Messages body needs (Claude on Vertex sends them as ``anthropic_beta``)."""
    return [BETA] if "context_management" in native else []


def merge_beta_header(existing: str | None, betas: Iterable[str]) -> str:
    """An ``anthropic-beta`` header value: the caller's flags plus ``betas``, each once, in order."""
    flags = [flag.strip() for flag in (existing or "").split(",") if flag.strip()]
    flags.extend(beta for beta in betas if beta not in flags)
    return ",".join(flags)


# -- reading -----------------------------------------------------------------------------------------


def _no_unknown(raw: JsonObj, known: frozenset[str], path: str) -> None:
    # A misspelt option would otherwise be dropped and the caller would never learn it did nothing.
    for key in raw:
        if key not in known:
            raise InvalidBodyError(
                f"Unknown field {key!r} in {path} (known: {', '.join(sorted(known))}).", param=f"{path}.{key}"
            )


def _count(raw: JsonObj, key: str, path: str, *, minimum: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidBodyError(f"{path}.{key} must be an integer >= {minimum}.", param=f"{path}.{key}")
    return value


def _clear_tool_uses(raw: object) -> ClearToolUses | None:
    path = f"{FIELD}.clear_tool_uses"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidBodyError(f"{path} must be an object.", param=path)
    _no_unknown(raw, _TOOL_USES_KEYS, path)
    exclude = raw.get("exclude_tools")
    if exclude is not None and (not isinstance(exclude, list) or not all(isinstance(t, str) and t for t in exclude)):
        raise InvalidBodyError(f"{path}.exclude_tools must be an array of tool names.", param=f"{path}.exclude_tools")
    inputs = raw.get("clear_tool_inputs")
    if inputs is not None and not isinstance(inputs, bool):
        raise InvalidBodyError(f"{path}.clear_tool_inputs must be a boolean.", param=f"{path}.clear_tool_inputs")
    return ClearToolUses(
        trigger=_count(raw, "trigger", path, minimum=1),
        keep=_count(raw, "keep", path, minimum=0),
        clear_at_least=_count(raw, "clear_at_least", path, minimum=0),
        exclude_tools=tuple(exclude) if exclude is not None else None,
        clear_tool_inputs=inputs,
    )


def _clear_thinking(raw: object) -> ClearThinking | None:
    path = f"{FIELD}.clear_thinking"
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidBodyError(f"{path} must be an object.", param=path)
    _no_unknown(raw, _THINKING_KEYS, path)
    keep = raw.get("keep")
    if keep == "all":
        return ClearThinking("all")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise InvalidBodyError(f'{path}.keep must be an integer >= 1 or "all".', param=f"{path}.keep")
    return ClearThinking(keep)
