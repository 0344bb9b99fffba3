"""The safety classifiers LLM security calls, each over its real wire protocol.

Three kinds, chosen by configuration (:mod:`heliport.steps.llm_security` decides which serves what):

* :class:`PromptGuard`: Meta's Llama Prompt Guard 2 as Groq serves it (``meta-llama/llama-prompt-guard-2-86m``),
  an OpenAI-compatible chat completion whose answer is the text of one number, the probability that
  the message is a prompt attack (``"0.9995"``). The model reads at most 512 tokens, so a long message
  is screened in overlapping segments, concurrently, and its score is the highest segment's.
* :class:`LlamaGuard`: Meta's Llama Guard 4 (``meta-llama/llama-guard-4-12b``), a chat completion that
  answers ``safe``, or ``unsafe`` and a line of hazard codes (``unsafe\\nS1,S10``) from the MLCommons
  taxonomy, named here (:data:`HAZARDS`). It also sees the message's images.
* :class:`BedrockGuardrail`: Amazon Bedrock's ``ApplyGuardrail`` (``POST /guardrail/<id>/version/<v>/apply``
  on the regional ``bedrock-runtime`` endpoint, SigV4-signed with the function's role like the Bedrock
  provider), whose assessments list the content filters that fired. One call serves both tiers: its
  ``PROMPT_ATTACK`` filter is the prompt-injection verdict, and everything it blocked is the safety one.

Each ``screen`` gives one :class:`Verdict` per tier it serves, or raises :class:`ClassifierError` when
it got no usable answer (unreachable, an error status, a timeout, an answer it cannot read). Error
texts name the classifier and the status, never a provider's error message (which can quote a key).
Calls go through the app's pooled upstream transport, to operator-configured (trusted) hosts.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import quote

import msgspec

from heliport.errors import UpstreamError
from heliport.proxy.transport import UpstreamRequest, UpstreamResponse
from heliport.steps.messages import UserMessage

if TYPE_CHECKING:
    from botocore.credentials import Credentials

__all__ = [
    "CALL_TIMEOUT_S",
    "HAZARDS",
    "BedrockGuardrail",
    "Classifier",
    "ClassifierError",
    "LlamaGuard",
    "PromptGuard",
    "Send",
    "Tier",
    "Verdict",
    "segments",
]

#: ``prompt_injection``: ``Helicone-LLM-Security-Enabled``; ``safety``: ``-Advanced``'s 14 categories.
Tier = Literal["prompt_injection", "safety"]
#: One upstream call (the app's pooled transport's ``send``).
Send = Callable[[UpstreamRequest], Awaitable[UpstreamResponse]]

#: The longest one classifier call may take, whatever the transport's read timeout: the caller's
#: request waits on it, and a check that hangs is a check that failed.
CALL_TIMEOUT_S = 20.0
#: Classifier answers are a few hundred bytes; anything past this is not one.
_MAX_ANSWER_BYTES = 256 * 1024

#: Llama Guard 4's hazard codes (MLCommons taxonomy), by the names Helicone's docs use.
HAZARDS: dict[str, str] = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}
_HAZARD_CODE = re.compile(r"\bS(\d{1,2})\b")

#: Bedrock content filter types, named for people.
_FILTER_NAMES = {
    "PROMPT_ATTACK": "Prompt Attack",
    "HATE": "Hate",
    "INSULTS": "Insults",
    "SEXUAL": "Sexual",
    "VIOLENCE": "Violence",
    "MISCONDUCT": "Misconduct",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One classifier's judgement of one message for one tier."""

    tier: Tier
    classifier: str
    #: What was called: ``groq:meta-llama/llama-prompt-guard-2-86m``, ``bedrock:<id>:<version>``.
    model: str
    threat: bool
    #: Prompt Guard's attack probability (the highest segment's); None where the answer has no score.
    score: float | None = None
    #: The threat's categories by name (``Violent Crimes (S1)``, ``Prompt Attack (HIGH)``).
    categories: tuple[str, ...] = ()
    latency_ms: float = 0.0
    #: How many calls it took (Prompt Guard: one per segment).
    calls: int = 1
    #: Images in the message this classifier could not look at (Prompt Guard reads text only).
    images_unscreened: int = 0

    def fact(self) -> dict[str, object]:
        fact: dict[str, object] = {
            "tier": self.tier,
            "classifier": self.classifier,
            "model": self.model,
            "verdict": "threat" if self.threat else "safe",
            "score": self.score,
            "categories": list(self.categories),
            "latency_ms": round(self.latency_ms, 2),
        }
        if self.calls != 1:
            fact["calls"] = self.calls
        if self.images_unscreened:
            fact["images_unscreened"] = self.images_unscreened
        return fact

    def describe(self) -> str:
        """For the threat answer's ``details``: which classifier said what."""
        found = f"{self.classifier} ({self.model}) found {', '.join(self.categories) or 'a threat'}"
        return found if self.score is None else f"{found} (score {self.score:.4f})"


class ClassifierError(Exception):
    """A classifier gave no usable verdict; the message says which and why (never a secret)."""


class Classifier(Protocol):
    # Read-only members: the classifiers are frozen dataclasses.
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str:
        """What is called, as the settings name it (``groq:meta-llama/llama-guard-4-12b``)."""
        ...

    @property
    def tiers(self) -> tuple[Tier, ...]: ...

    async def screen(self, message: UserMessage, send: Send) -> list[Verdict]:
        """One verdict per tier this classifier serves; raises :class:`ClassifierError`."""
        ...


# -- the HTTP call ------------------------------------------------------------------------------------


async def _call(send: Send, request: UpstreamRequest, who: str) -> object:
    """POST ``request`` and decode its JSON answer; every failure becomes a :class:`ClassifierError`."""
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            response = await send(request)
            try:
                raw = await _read(response)
            finally:
                response.close()
    except TimeoutError:
        raise ClassifierError(f"{who} did not answer within {CALL_TIMEOUT_S:g} s") from None
    except UpstreamError as exc:
        raise ClassifierError(f"{who} could not be reached ({exc.code})") from None
    if response.status >= 400:
        raise ClassifierError(f"{who} answered HTTP {response.status}{_error_kind(response, raw)}")
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise ClassifierError(f"{who} answered HTTP {response.status} with a body that is not JSON") from None


async def _read(response: UpstreamResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.chunks():
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)[:_MAX_ANSWER_BYTES]


def _error_kind(response: UpstreamResponse, raw: bytes) -> str:
    """The error's machine-readable kind (OpenAI's ``error.code``/``type``, AWS's error type), never its text."""
    for name, value in response.headers:
        if name.lower() == b"x-amzn-errortype":
            return f" ({value.decode('latin-1').partition(':')[0][:80]})"
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind = error.get("code") or error.get("type")
        if isinstance(kind, str) and kind:
            return f" ({kind[:80]})"
    return ""


def _chat_content(answer: object, who: str) -> str:
    """``choices[0].message.content`` of a chat completion, or a :class:`ClassifierError`."""
    if isinstance(answer, dict):
        choices = answer.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return str(message["content"])
    raise ClassifierError(f"{who} answered without a chat completion's choices[0].message.content")


# -- Prompt Guard -------------------------------------------------------------------------------------

#: Prompt Guard 2 reads 512 tokens. Its tokenizer (mDeBERTa's) takes 3-5 characters of English a
#: token and about one of other scripts; a budget of 1,000 with ASCII characters costing 1 and others 2
#: keeps a segment under ~500 tokens even for dense ASCII (2 characters a token). Segments overlap so
#: an attack cut at a boundary is still read whole in one of them.
_SEGMENT_BUDGET = 1000
_SEGMENT_OVERLAP = 120


def segments(text: str, budget: int = _SEGMENT_BUDGET, overlap: int = _SEGMENT_OVERLAP) -> list[str]:
    """``text`` in pieces Prompt Guard reads whole, cut at whitespace where one is near the end."""
    pieces: list[str] = []
    start, length = 0, len(text)
    while start < length:
        end, cost = start, 0
        while end < length and cost + (1 if text[end] < "\x80" else 2) <= budget:
            cost += 1 if text[end] < "\x80" else 2
            end += 1
        if end < length:
            cut = text.rfind(" ", start + budget // 2, end)
            if cut > start:
                end = cut + 1
        pieces.append(text[start:end])
        if end >= length:
            break
        start = max(end - overlap, start + 1)
    return pieces


#: At most this many segment calls of one message at once (a long message is many calls).
_SEGMENT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class PromptGuard:
    """Prompt-attack probability per message from an OpenAI-compatible host serving Prompt Guard 2."""

    model: str
    url: str
    api_key: str
    threshold: float
    name: str = "prompt-guard"
    tiers: tuple[Tier, ...] = ("prompt_injection",)

    async def screen(self, message: UserMessage, send: Send) -> list[Verdict]:
        started = time.perf_counter()
        pieces = segments(message.text) if message.text else []
        limit = asyncio.Semaphore(_SEGMENT_CONCURRENCY)

        async def score(piece: str) -> float:
            async with limit:
                return await self._score(piece, send)

        scores = await asyncio.gather(*(score(piece) for piece in pieces))
        top = max(scores, default=0.0)
        return [
            Verdict(
                "prompt_injection",
                self.name,
                self.model,
                threat=top >= self.threshold,
                score=top,
                categories=("Prompt Attack",) if top >= self.threshold else (),
                latency_ms=(time.perf_counter() - started) * 1000,
                calls=len(pieces),
                images_unscreened=len(message.images),
            )
        ]

    async def _score(self, text: str, send: Send) -> float:
        who = f"{self.name} ({self.model})"
        body = msgspec.json.encode(
            {"model": self.model.partition(":")[2], "messages": [{"role": "user", "content": text}]}
        )
        answer = await _call(send, _chat_request(self.url, self.api_key, body), who)
        content = _chat_content(answer, who).strip()
        try:
            value = float(content)
        except ValueError:
            raise ClassifierError(f"{who} answered {content[:40]!r}, not a score") from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ClassifierError(f"{who} answered {content[:40]!r}, not a score between 0 and 1")
        return value


def _chat_request(url: str, api_key: str, body: bytes) -> UpstreamRequest:
    headers = [("content-type", "application/json"), ("authorization", f"Bearer {api_key}")]
    return UpstreamRequest("POST", url, headers, body)


# -- Llama Guard --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LlamaGuard:
    """The 14-category safety verdict per message from an OpenAI-compatible host serving Llama Guard 4."""

    model: str
    url: str
    api_key: str
    name: str = "llama-guard"
    tiers: tuple[Tier, ...] = ("safety",)

    async def screen(self, message: UserMessage, send: Send) -> list[Verdict]:
        who = f"{self.name} ({self.model})"
        started = time.perf_counter()
        content: object = message.text
        if message.images:  # Llama Guard 4 is multimodal: the images are judged with the text
            parts: list[dict[str, object]] = [{"type": "text", "text": message.text}] if message.text else []
            parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
            content = parts
        body = msgspec.json.encode(
            {"model": self.model.partition(":")[2], "messages": [{"role": "user", "content": content}]}
        )
        answer = await _call(send, _chat_request(self.url, self.api_key, body), who)
        threat, categories = parse_llama_guard(_chat_content(answer, who), who)
        return [
            Verdict(
                "safety",
                self.name,
                self.model,
                threat=threat,
                categories=categories,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        ]


def parse_llama_guard(content: str, who: str = "llama-guard") -> tuple[bool, tuple[str, ...]]:
    """``safe`` -> (False, ()); ``unsafe\\nS1,S10`` -> (True, ("Violent Crimes (S1)", "Hate (S10)"))."""
    lines = [line.strip() for line in content.strip().splitlines() if line.strip()]
    first = lines[0].lower() if lines else ""
    if first == "safe":
        return False, ()
    if first != "unsafe":
        raise ClassifierError(f"{who} answered {content.strip()[:40]!r}, neither 'safe' nor 'unsafe'")
    codes = [f"S{int(number)}" for number in _HAZARD_CODE.findall(" ".join(lines[1:]))]
    names = tuple(dict.fromkeys(f"{HAZARDS.get(code, 'Unknown category')} ({code})" for code in codes))
    return True, names or ("Unspecified category",)


# -- Bedrock Guardrails -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BedrockGuardrail:
    """Amazon Bedrock's ``ApplyGuardrail`` on user input: one call judges both tiers."""

    guardrail_id: str
    version: str
    region: str
    #: Replaces ``https://bedrock-runtime.<region>.amazonaws.com`` (``HELIPORT_UPSTREAM_BEDROCK``: tests,
    #: VPC endpoints).
    endpoint: str | None
    credentials: Callable[[], Awaitable[Credentials]]
    tiers: tuple[Tier, ...]
    name: str = "bedrock-guardrail"

    @property
    def model(self) -> str:
        return f"bedrock:{self.guardrail_id}:{self.version}"

    def url(self) -> str:
        from heliport.config import ConfigError

        if self.endpoint:
            base = self.endpoint.rstrip("/")
        elif re.fullmatch(r"[a-z0-9-]+", self.region or ""):
            base = f"https://bedrock-runtime.{self.region}.amazonaws.com"
        else:
            raise ConfigError(f"the Bedrock guardrail needs an AWS region such as us-east-1, got {self.region!r}")
        return f"{base}/guardrail/{quote(self.guardrail_id, safe='')}/version/{quote(self.version, safe='')}/apply"

    async def screen(self, message: UserMessage, send: Send) -> list[Verdict]:
        from heliport.config import ConfigError
        from heliport.gateway import bedrock_wire

        who = f"{self.name} ({self.model})"
        started = time.perf_counter()
        content: list[dict[str, object]] = [{"text": {"text": message.text}}] if message.text else []
        unscreened = 0
        for image in message.images:
            block = _guardrail_image(image)
            if block is None:
                unscreened += 1
            else:
                content.append(block)
        body = msgspec.json.encode({"source": "INPUT", "content": content})
        try:
            url = self.url()
            signed = bedrock_wire.sign(
                "POST",
                url,
                {"content-type": "application/json"},
                body,
                region=self.region,
                credentials=await self.credentials(),
            )
        except ConfigError as exc:
            raise ClassifierError(f"{who} could not be called: {exc}") from None
        answer = await _call(send, UpstreamRequest("POST", url, list(signed.items()), body), who)
        latency = (time.perf_counter() - started) * 1000
        return [
            Verdict(
                tier,
                self.name,
                self.model,
                threat=bool(found),
                categories=found,
                latency_ms=latency,
                images_unscreened=unscreened,
            )
            for tier in self.tiers
            for found in (guardrail_findings(answer, tier, who),)
        ]


def _guardrail_image(url: str) -> dict[str, object] | None:
    """An ``ApplyGuardrail`` image block for a PNG or JPEG ``data:`` URL; None for what it cannot take
    (other formats, and remote URLs, which heliport does not fetch on a caller's behalf)."""
    match = re.fullmatch(r"data:image/(png|jpe?g);base64,([A-Za-z0-9+/=\s]+)", url)
    if match is None:
        return None
    image_format = "png" if match.group(1) == "png" else "jpeg"
    return {"image": {"format": image_format, "source": {"bytes": re.sub(r"\s", "", match.group(2))}}}


def guardrail_findings(answer: object, tier: Tier, who: str = "bedrock-guardrail") -> tuple[str, ...]:
    """What an ``ApplyGuardrail`` answer found for ``tier``: the ``PROMPT_ATTACK`` filter for
    prompt injection; for safety, every other content filter, denied topic, word filter and blocked
    sensitive-information match. A filter counts when it blocked or was detected (detect-only mode)."""
    if not isinstance(answer, dict) or answer.get("action") not in ("NONE", "GUARDRAIL_INTERVENED"):
        raise ClassifierError(f"{who} answered without an ApplyGuardrail action")
    assessments = answer.get("assessments")
    found: list[str] = []
    for assessment in assessments if isinstance(assessments, list) else ():
        if not isinstance(assessment, dict):
            continue
        for item in _policy_items(assessment, "contentPolicy", ("filters",)):
            kind = str(item.get("type", ""))
            if (kind == "PROMPT_ATTACK") == (tier == "prompt_injection") and _fired(item):
                label = _FILTER_NAMES.get(kind, kind.title() or "Unknown filter")
                confidence = item.get("confidence")
                found.append(f"{label} ({confidence})" if isinstance(confidence, str) else label)
        if tier != "safety":
            continue
        for item in _policy_items(assessment, "topicPolicy", ("topics",)):
            if _fired(item):
                found.append(f"Denied topic ({item.get('name', '?')})")
        for item in _policy_items(assessment, "wordPolicy", ("customWords", "managedWordLists")):
            if _fired(item):
                found.append(f"Word filter ({item.get('type', 'CUSTOM')})")
        for item in _policy_items(assessment, "sensitiveInformationPolicy", ("piiEntities", "regexes")):
            if item.get("action") == "BLOCKED":
                found.append(f"Sensitive information ({item.get('type') or item.get('name') or '?'})")
    return tuple(dict.fromkeys(found))


def _policy_items(assessment: dict[str, object], policy: str, lists: Sequence[str]) -> list[dict[str, object]]:
    section = assessment.get(policy)
    items: list[dict[str, object]] = []
    if isinstance(section, dict):
        for name in lists:
            entries = section.get(name)
            if isinstance(entries, list):
                items.extend(entry for entry in entries if isinstance(entry, dict))
    return items


def _fired(item: dict[str, object]) -> bool:
    return item.get("action") == "BLOCKED" or item.get("detected") is True
