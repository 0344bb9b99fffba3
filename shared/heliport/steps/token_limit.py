"""``Helicone-Token-Limit-Exception-Handler``: fit a request to its model's context window.

Helicone's three values, against the context length of the model in heliport's registry
(``gateway/models.json``). The model is the body's ``model``; ``Helicone-Model-Override`` names it
when the body has none (Gemini, Bedrock and Azure carry it in the URL), or replaces it for the
estimate. On the AI gateway a model string may carry ``/provider`` (and ``/deployment``); a provider
whose endpoint declares its own context length is measured by that.

The budget: context length, minus the requested output (``max_completion_tokens``, ``max_tokens``
or ``max_output_tokens``; else :data:`DEFAULT_OUTPUT_RESERVE`, or the model's maximum output when
that is smaller), minus a safety margin (:func:`safety_margin`: 1% of the context, at least 256
tokens, for chat templates and anything the estimate does not see). Token counts are the estimate of
:mod:`heliport.steps.tokens` (on the high side; measured against real tokenizers).

What counts: every message (text; 5 tokens of framing each; :data:`IMAGE_TOKENS` per image part),
and the other input-bearing fields (``tools``, ``functions``, ``response_format``, ``text``,
``system``, ``instructions``, ``tool_choice``). A body small enough that even one token per byte fits
is passed without an estimate (no tokenizer produces more tokens than UTF-8 bytes).

The strategies, only when the estimate is over the budget (an input that fits goes on byte for byte):

* ``truncate``: normalise every text (a run of whitespace becomes one space, or one newline when it
  holds one), then, if still over, cut texts from their end: the longest first, down to a common
  cap (short messages stay whole, long ones are cut to the same size).
* ``middle-out``: system and developer messages (and Anthropic's ``system``, Responses'
  ``instructions``) are kept; of the conversation, the first and the latest message are kept and
  messages are removed from the middle outwards until it fits. A tool call is removed with its
  results (an assistant message and the ``tool`` messages after it; an Anthropic ``tool_use`` turn
  with the user turn holding its ``tool_result``; a Responses item with the items after it that
  have no role). If the kept messages alone are still over, the longest texts keep their head and
  their tail and lose their middle (marked by a ``…`` line).
* ``fallback``: ``model`` is a comma-separated list (``"gpt-4o, gpt-4o-mini"``); of its first two
  entries, the first is sent when the input fits its budget and the second when it does not. The
  body goes on with that one model (on the AI gateway, ``!provider`` exclusions are kept).

Failing open (an optional feature): an unreadable body, an unknown model or a body without messages
goes on unchanged; the reason is on the log row (``errors``) and in the facts. An input that cannot
be made to fit (what is not text, such as images and tool definitions, is over the budget by itself;
or ``fallback`` without a second model) also goes on unchanged, so that the provider gives its own
context-length error; the facts say ``fits: false``.

Facts, under ``token_limit``: the strategy, model and context length, output reserve, budget, tokens
before and after, whether it fits and whether the body changed, and per strategy what was removed
(messages), cut (texts) or chosen (the fallback model).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec

from heliport.exchange import Exchange, StepResult
from heliport.headers import TokenLimitHandler
from heliport.steps import StepServices
from heliport.steps.tokens import ELISION, cuts, estimate, head_and_tail

if TYPE_CHECKING:
    from heliport.gateway.registry import ModelEntry, Registry

__all__ = ["DEFAULT_OUTPUT_RESERVE", "IMAGE_TOKENS", "Fitted", "TokenLimit", "fit", "safety_margin"]

#: Output kept free when the request does not say how much it wants (capped by the model's maximum).
DEFAULT_OUTPUT_RESERVE = 4096
#: One image part, whatever its size: above what OpenAI (up to about 2,700 for the largest tiles on
#: its patch-based models) and Anthropic (about 1,600 for a 1.15 megapixel image) charge for one.
IMAGE_TOKENS = 2800
#: Framing per message (role, separators of the chat template) and per request (the reply's primer).
MESSAGE_TOKENS = 5
REQUEST_TOKENS = 8
#: Bodies larger than this are fitted on a worker thread: the estimate reads about 2 MB/s.
_THREAD_BYTES = 256 * 1024

JsonObj = dict[str, Any]

#: Fields besides the conversation that the model reads as input.
_INPUT_FIELDS = ("tools", "functions", "response_format", "text", "tool_choice")
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_PINNED_ROLES = frozenset({"system", "developer"})
_OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_DATED = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
_WHITESPACE = re.compile(r"\s+")
_ELISION_COST = estimate(ELISION)


def safety_margin(context: int) -> int:
    """Tokens kept free besides the output: 1% of the context window, at least 256."""
    return max(256, context // 100)


# -- the step ----------------------------------------------------------------------------------------


class TokenLimit:
    """The pre-forward step; ``registry`` defaults to the packaged model registry, read on first use."""

    def __init__(self, services: StepServices, *, registry: Callable[[], Registry] | None = None) -> None:
        self._services = services
        self._registry = registry or _packaged_registry

    def wanted(self, exchange: Exchange, /) -> bool:
        return exchange.options.token_limit_handler is not None

    async def __call__(self, exchange: Exchange, /) -> StepResult:
        options = exchange.options
        strategy = options.token_limit_handler
        assert strategy is not None
        registry = self._registry()
        body = exchange.body
        if len(body) > _THREAD_BYTES:
            fitted = await asyncio.to_thread(
                fit, body, strategy, registry, options.model_override, exchange.via_gateway
            )
        else:
            fitted = fit(body, strategy, registry, options.model_override, exchange.via_gateway)
        if fitted.problem is not None:
            exchange.errors.append(f"Helicone-Token-Limit-Exception-Handler ({strategy}) not applied: {fitted.problem}")
        return StepResult(body=fitted.body, facts={"token_limit": fitted.facts})


@cache
def _packaged_registry() -> Registry:
    from heliport.gateway.registry import Registry

    return Registry.load()


# -- fitting a body ------------------------------------------------------------------------------------


# Plain classes with slots, not dataclasses: a dataclass costs a millisecond or more at import, and
# this module is imported when the app starts (Lambda's cold start).


class Fitted:
    """What :func:`fit` decided: the new body (None: unchanged), the facts, and why it did nothing."""

    __slots__ = ("body", "facts", "problem")

    def __init__(self, body: bytes | None, facts: dict[str, object], problem: str | None = None) -> None:
        self.body = body
        self.facts = facts
        self.problem = problem

    def __repr__(self) -> str:
        return f"Fitted(body={self.body!r:.60}, facts={self.facts!r}, problem={self.problem!r})"


class _Slot:
    """One text the strategies may rewrite, where it lives in the body, and its estimate."""

    __slots__ = ("holder", "key", "tokens")

    def __init__(self, holder: Any, key: str | int, tokens: int) -> None:
        self.holder = holder
        self.key = key
        self.tokens = tokens

    @property
    def text(self) -> str:
        value: str = self.holder[self.key]
        return value

    def set(self, text: str) -> None:
        self.holder[self.key] = text
        self.tokens = estimate(text)


class _Unit:
    """Messages that stay or go together (a tool call with its results), with their texts."""

    __slots__ = ("fixed", "items", "pinned", "slots")

    def __init__(self, items: list[JsonObj], pinned: bool, fixed: int = 0) -> None:
        self.items = items
        self.pinned = pinned
        #: Tokens of what is not a slot: framing, images, tool calls, names.
        self.fixed = fixed
        self.slots: list[_Slot] = []

    @property
    def tokens(self) -> int:
        return self.fixed + sum(slot.tokens for slot in self.slots)


class _Conversation:
    """A body as the strategies see it: units in order, and where the kept items are written back."""

    __slots__ = ("body", "extra", "list_field", "units")

    def __init__(self, body: JsonObj, list_field: str | None, units: list[_Unit], extra: int) -> None:
        self.body = body
        #: The body's field holding the conversation (``messages``, ``input``), if a list.
        self.list_field = list_field
        self.units = units
        #: Tokens of the rest of the input (tools, response format, the request's framing).
        self.extra = extra

    def tokens(self) -> int:
        return self.extra + sum(unit.tokens for unit in self.units)

    def slots(self) -> list[_Slot]:
        return [slot for unit in self.units for slot in unit.slots]

    def write_back(self) -> None:
        """Put the kept items back into the body (texts were rewritten in place)."""
        if self.list_field is not None:
            self.body[self.list_field] = [item for unit in self.units for item in unit.items]


def fit(
    body: bytes, strategy: TokenLimitHandler, registry: Registry, model_override: str | None, via_gateway: bool
) -> Fitted:
    """Apply ``strategy`` to ``body`` (see the module docstring); never raises for a bad body."""
    facts: dict[str, object] = {"strategy": strategy}
    try:
        parsed = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        return _skip(facts, "body is not a JSON object")
    model_field = parsed.get("model")
    candidates, exclusions = _model_list(model_field if isinstance(model_field, str) else None, via_gateway)
    estimated_model = model_override or (candidates[0] if candidates else None)
    facts["model"] = estimated_model
    if estimated_model is None:
        return _skip(facts, "no model in the body and no Helicone-Model-Override header")
    context = _context_length(registry, estimated_model, via_gateway)
    if context is None:
        problem = f"unknown model {estimated_model!r}: its context length is not in the model registry"
        if strategy == "fallback" and len(candidates) > 1:
            # The list is Helicone's syntax, never the provider's: send the first model as it would be
            # sent when it fits, rather than a model string no provider accepts.
            facts["chosen_model"] = candidates[0]
            skipped = _skip(facts, problem)
            return Fitted(_with_model(parsed, candidates[0], exclusions), skipped.facts, problem)
        return _skip(facts, problem)
    entry, length = context
    reserve = _output_reserve(parsed, entry)
    budget = length - reserve - safety_margin(length)
    facts |= {"context_length": length, "output_reserve": reserve, "budget": budget}
    if budget <= 0:
        return _skip(facts, f"the requested output ({reserve} tokens) leaves no room for input in {length}")

    # Sure to fit: at most one token per byte, plus the images counted generously.
    bound = len(body) + IMAGE_TOKENS * body.count(b"image")
    if bound <= budget:
        facts |= {"tokens_before": bound, "estimate": "byte bound", "fits": True}
        if strategy == "fallback" and len(candidates) > 1:
            facts |= {"chosen_model": candidates[0], "changed": True}
            return Fitted(_with_model(parsed, candidates[0], exclusions), facts)
        return Fitted(None, facts | {"changed": False})

    conversation = _read(parsed)
    if conversation is None:
        if strategy == "fallback":
            # Nothing to trim, but the whole input can still be measured for the choice.
            before = _value_tokens(parsed, (*_INPUT_FIELDS, "messages", "input", "prompt", "system", "instructions"))
        else:
            return _skip(facts, "the body has no messages, input or prompt this handler can read")
    else:
        before = conversation.tokens()
    facts |= {"tokens_before": before, "estimate": "heuristic"}
    if before <= budget:
        facts["fits"] = True
        if strategy == "fallback" and len(candidates) > 1:
            facts |= {"chosen_model": candidates[0], "changed": True}
            return Fitted(_with_model(parsed, candidates[0], exclusions), facts)
        return Fitted(None, facts | {"changed": False})

    if strategy == "fallback":
        if len(candidates) < 2:
            facts |= {"fits": False, "changed": False}
            return Fitted(None, facts, f"over the budget of {estimated_model} and no second model to fall back to")
        facts |= {"fits": False, "chosen_model": candidates[1], "changed": True}
        second = _context_length(registry, candidates[1], via_gateway)
        if second is not None:
            # Recorded, not acted on: the caller chose the second model; whether it fits is its answer.
            second_budget = second[1] - _output_reserve(parsed, second[0]) - safety_margin(second[1])
            facts |= {"fallback_context_length": second[1], "fits_fallback": before <= second_budget}
        return Fitted(_with_model(parsed, candidates[1], exclusions), facts)

    assert conversation is not None
    outcome = _truncate(conversation, budget) if strategy == "truncate" else _middle_out(conversation, budget)
    after = conversation.tokens()
    facts |= outcome | {"tokens_after": after, "fits": after <= budget}
    if after > budget:
        fixed = conversation.extra + sum(unit.fixed for unit in conversation.units)
        facts |= {"tokens_after": before, "changed": False}
        return Fitted(
            None,
            facts,
            f"cannot fit: trimmed, the input is still {after} tokens against a budget of {budget} "
            f"({fixed} of them not text: images, tools, framing); sent unchanged",
        )
    conversation.write_back()
    facts["changed"] = True
    return Fitted(msgspec.json.encode(conversation.body), facts)


def _skip(facts: dict[str, object], problem: str) -> Fitted:
    return Fitted(None, facts | {"applied": False, "reason": problem}, problem)


# -- models --------------------------------------------------------------------------------------------


def _model_list(spec: str | None, via_gateway: bool) -> tuple[list[str], list[str]]:
    """The model entries of a (comma-separated) model string, and on the gateway its ``!`` exclusions."""
    if spec is None:
        return [], []
    entries = [part.strip() for part in spec.split(",") if part.strip()]
    if not via_gateway:
        return entries, []
    return [e for e in entries if not e.startswith("!")], [e for e in entries if e.startswith("!")]


def _context_length(registry: Registry, model: str, via_gateway: bool) -> tuple[ModelEntry, int] | None:
    """The registry entry of ``model`` and its context length on this route; None for an unknown model.

    Looked up as the registry id or any provider's id for it, then without a date suffix
    (``gpt-4o-2024-08-06``, ``claude-3-5-haiku-latest``). On the AI gateway a ``/provider`` (and
    ``/deployment``) suffix is read as routing does, and that provider's own context length wins.
    """
    from heliport.gateway.registry import KNOWN_PROVIDERS

    name, provider = model.strip(), None
    if via_gateway:
        parts = [part.strip() for part in name.split("/")]
        lowered = [part.lower() for part in parts]
        if len(parts) >= 2 and lowered[-1] in KNOWN_PROVIDERS:
            name, provider = "/".join(parts[:-1]), lowered[-1]
        elif len(parts) >= 3 and lowered[-2] in KNOWN_PROVIDERS:
            name, provider = "/".join(parts[:-2]), lowered[-2]
    entry = registry.resolve(name) or registry.resolve(_DATED.sub("", name))
    if entry is None:
        return None
    endpoint = entry.endpoint(provider) if provider else None
    length = endpoint.context_length if endpoint and endpoint.context_length else entry.context_length
    return entry, length


def _output_reserve(body: JsonObj, model: ModelEntry) -> int:
    """The output the request asks room for, else the default reserve (at most the model's maximum)."""
    for name in _OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return min(DEFAULT_OUTPUT_RESERVE, model.max_output_tokens or DEFAULT_OUTPUT_RESERVE)


def _with_model(body: JsonObj, model: str, exclusions: list[str]) -> bytes:
    body["model"] = ",".join([*exclusions, model])
    return msgspec.json.encode(body)


# -- reading a body into units -------------------------------------------------------------------------


def _read(body: JsonObj) -> _Conversation | None:
    """The body's conversation as units (None when it has none this module can read)."""
    pinned: list[_Unit] = []
    for name in ("system", "instructions"):  # Anthropic's system prompt, Responses' instructions
        if name in body and body[name] is not None:
            pinned.append(_top_level_unit(body, name))
    messages = body.get("messages")
    inputs = body.get("input")
    prompt = body.get("prompt")
    units: list[_Unit]
    if isinstance(messages, list):
        list_field, units = "messages", _units(messages)
    elif isinstance(inputs, list):
        list_field, units = "input", _units(inputs)
    elif isinstance(inputs, str):
        list_field, units = None, [_top_level_unit(body, "input")]
    elif isinstance(prompt, str):
        list_field, units = None, [_top_level_unit(body, "prompt")]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        unit = _Unit(items=[], pinned=False, fixed=MESSAGE_TOKENS)
        unit.slots = [_Slot(prompt, index, estimate(text)) for index, text in enumerate(prompt)]
        list_field, units = None, [unit]
    else:
        return None
    extra = REQUEST_TOKENS + _value_tokens(body, _INPUT_FIELDS)
    return _Conversation(body, list_field, pinned + units, extra)


def _top_level_unit(body: JsonObj, name: str) -> _Unit:
    """A field of the body that is text, or a list of text blocks (Anthropic's ``system``)."""
    unit = _Unit(items=[], pinned=name in ("system", "instructions"), fixed=MESSAGE_TOKENS)
    value = body[name]
    if isinstance(value, str):
        unit.slots.append(_Slot(body, name, estimate(value)))
    else:
        unit.fixed += _tokens(value, unit.slots, collect=True)
    return unit


def _units(items: list[Any]) -> list[_Unit]:
    """Messages (or Responses items) grouped: a tool result joins the call before it."""
    units: list[_Unit] = []
    for item in items:
        if not isinstance(item, dict):
            # Not a message this module understands: kept, counted, never trimmed.
            units.append(_Unit(items=[item], pinned=True, fixed=_tokens(item, [], collect=False)))
            continue
        role = item.get("role")
        joins = (
            units
            and not units[-1].pinned
            and (role is None or role in ("tool", "function") or _holds_tool_result(item))
        )
        unit = units[-1] if joins else _Unit(items=[], pinned=role in _PINNED_ROLES)
        if not joins:
            units.append(unit)
        unit.items.append(item)
        unit.fixed += MESSAGE_TOKENS + _tokens(item, unit.slots, collect=True)
    return units


def _holds_tool_result(message: JsonObj) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "tool_result" for p in content)


def _tokens(value: Any, slots: list[_Slot], *, collect: bool, holder: Any = None, key: str | int | None = None) -> int:
    """Estimated tokens of a JSON value that are not in a collected slot; text slots are collected.

    A slot is a message's text: ``content`` when a string, the ``text`` of a text part, a tool
    result's string ``content``, a Responses ``function_call_output``'s ``output``. Image parts cost
    :data:`IMAGE_TOKENS`; every other string (tool-call arguments, names, roles) is estimated as is.
    """
    if isinstance(value, str):
        cost = estimate(value)
        if collect and holder is not None and key in ("content", "text", "output"):
            slots.append(_Slot(holder, key, cost))
            return 0
        return cost
    if isinstance(value, dict):
        if value.get("type") in _IMAGE_PARTS:
            return IMAGE_TOKENS
        total = 0
        text_like = value.get("type") in _TEXT_PARTS or value.get("type") in (None, "tool_result", "message")
        text_like = text_like or value.get("type") == "function_call_output"
        for name, inner in value.items():
            if name in ("role", "type"):
                total += 1
                continue
            total += _tokens(inner, slots, collect=collect and text_like, holder=value, key=name)
        return total
    if isinstance(value, list):
        return sum(_tokens(inner, slots, collect=collect, holder=None, key=None) for inner in value)
    return 1 if value is not None else 0


def _value_tokens(body: JsonObj, names: tuple[str, ...]) -> int:
    return sum(_tokens(body[name], [], collect=False) for name in names if name in body and body[name] is not None)


# -- the strategies --------------------------------------------------------------------------------------


def _cap(sizes: list[int], room: int, overhead: int) -> int | None:
    """The largest per-text cap C with sum(min(size, C) + overhead for each cut text) <= room.

    None when even C = 0 does not fit (every text emptied is still over).
    """
    ordered = sorted(sizes)
    total_small = 0
    count = len(ordered)
    for index, size in enumerate(ordered):
        cut = count - index  # texts from here on are cut to the cap
        # A cap below this size: texts before it stay whole, the rest cost cap + overhead each.
        cap = (room - total_small - cut * overhead) // cut
        if cap < size:
            return cap if cap >= 0 else None
        total_small += size
    return ordered[-1] if ordered else 0


def _fit_slots(conversation: _Conversation, budget: int, cutter: Callable[[str, int], str], overhead: int) -> int:
    """Cut the texts of ``conversation`` to a common cap until it fits; the number of texts cut."""
    slots = conversation.slots()
    changed: set[int] = set()
    for _ in range(6):  # the cap is exact up to rounding at cut points: a few rounds at most
        over = conversation.tokens() - budget
        if over <= 0:
            break
        room = sum(slot.tokens for slot in slots) - over
        cap = _cap([slot.tokens for slot in slots], room, overhead)
        if cap is None:
            break
        for index, slot in enumerate(slots):
            if slot.tokens > cap:
                slot.set(cutter(slot.text, max(cap, 0)))
                changed.add(index)
    return len(changed)


def _truncate(conversation: _Conversation, budget: int) -> dict[str, object]:
    normalised = 0
    for slot in conversation.slots():
        text = slot.text
        squeezed = _WHITESPACE.sub(_squeeze, text).strip()
        if squeezed != text:
            slot.set(squeezed)
            normalised += 1
    cut = 0
    if conversation.tokens() > budget:
        cut = _fit_slots(conversation, budget, lambda text, tokens: cuts(text).head(tokens), 0)
    return {"normalised_texts": normalised, "cut_texts": cut}


def _squeeze(match: re.Match[str]) -> str:
    return "\n" if "\n" in match.group() else " "


def _middle_out(conversation: _Conversation, budget: int) -> dict[str, object]:
    units = conversation.units
    movable = [index for index, unit in enumerate(units) if not unit.pinned]
    removed_units: set[int] = set()
    removed_messages = 0
    if len(movable) > 2:
        middle = movable[1:-1]
        centre = (len(middle) - 1) / 2
        # Nearest the centre first; of two equally near, the older one.
        for position in sorted(range(len(middle)), key=lambda p: (abs(p - centre), p)):
            if conversation.tokens() <= budget:
                break
            index = middle[position]
            removed_units.add(index)
            removed_messages += len(units[index].items)
            units[index] = _Unit(items=[], pinned=False)  # emptied: costs nothing, writes nothing
    cut = 0
    if conversation.tokens() > budget:
        cut = _fit_slots(conversation, budget, _head_and_tail, _ELISION_COST)
    conversation.units = [unit for index, unit in enumerate(units) if index not in removed_units]
    return {"removed_messages": removed_messages, "cut_texts": cut}


def _head_and_tail(text: str, tokens: int) -> str:
    """``tokens`` is the cap of the text itself; the elision's own cost is the overhead beside it."""
    return head_and_tail(text, tokens + _ELISION_COST)
