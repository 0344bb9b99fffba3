"""``Helicone-Moderations-Enabled: true``: screen the latest user message with OpenAI's moderation endpoint.

Before the request goes anywhere, the latest user message (its text and its images, read by
:mod:`heliport.steps.messages` from any body format heliport carries) is sent to
``POST <openai base>/v1/moderations`` with ``omni-moderation-latest`` in OpenAI's multi-modal input
shape (``[{"type": "text", ...}, {"type": "image_url", "image_url": {"url": ...}}]``). A flagged
message is answered with Helicone's 400 (``PROMPT_FLAGGED_FOR_MODERATION``, with a link to the
request's page on heliport's dashboard) and the model is never called; a clean one goes on as usual.
Either way the log record carries what the check found, under the fact ``moderation``.

Where the call goes and with which key:

* ``<openai base>`` is the OpenAI base the pass-through proxy uses (``HELIPORT_UPSTREAM_OAI`` /
  ``HELIPORT_UPSTREAM_OPENAI``, else ``https://api.openai.com``), so a test or an air-gapped
  deployment redirects moderation with the rest of its OpenAI traffic;
* on the pass-through proxy, a request that goes to that OpenAI base is screened with the caller's own
  key (its ``Authorization``, with ``OpenAI-Organization`` / ``OpenAI-Project`` when sent), as
  Helicone does. Any other upstream (Anthropic, Azure OpenAI, a ``Helicone-Target-Url`` elsewhere)
  carries a key that is not OpenAI's, and a caller's key is never sent to a host it was not meant for:
  those requests, and every request on the AI gateway, are screened with the deployment's OpenAI
  account (``OPENAI_API_KEY``);
* with neither, the request is refused with an error that says what to configure.

Failures: the caller asked for the check, so when it cannot run (OpenAI unreachable, a 5xx or 429, no
readable answer) the request is refused with a 503 (``moderation_unavailable``), unless the operator
set ``HELIPORT_SAFETY_FAIL_OPEN``: then it goes on, and the log says why it was not screened. OpenAI
refusing the key (401/403) is answered as such (the caller's key: its status; the deployment's: 502),
and OpenAI rejecting the input itself (another 4xx, e.g. an image it cannot download) is a 400 that
relays OpenAI's reason. No key is ever part of an answer or of the log.

omni-moderation is said to take one image per call; a message with several images is screened with one
call per image (the first with the text), run concurrently, and the verdicts merged: flagged when any
call is, each category's score its highest.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from heliport.errors import HeliportError, RequestError, UpstreamError
from heliport.exchange import Answer, Exchange, StepResult, describe
from heliport.proxy.targets import PROVIDERS
from heliport.proxy.transport import UpstreamRequest, UpstreamResponse
from heliport.steps import StepServices
from heliport.steps.messages import UserMessage, decode_object, user_messages

__all__ = [
    "FLAGGED_CODE",
    "MODEL",
    "Moderation",
    "ModerationNotConfiguredError",
    "ModerationRefusedError",
    "ModerationRejectedError",
    "ModerationUnavailableError",
]

HEADER = "Helicone-Moderations-Enabled"
MODEL = "omni-moderation-latest"
FLAGGED_CODE = "PROMPT_FLAGGED_FOR_MODERATION"
FLAGGED_MESSAGE = "The given prompt was flagged by the OpenAI Moderation endpoint."
#: The fact's key on the log record.
FACT = "moderation"

#: The whole check (all its calls) gets this long; the transport's read timeout is sized for LLMs
#: that think for minutes, far too long for a classifier the request waits on.
_DEADLINE_S = 30.0
#: A moderation answer is ~2 KB per result; anything this large is not one.
_MAX_REPLY_BYTES = 1 << 20
#: How many category scores the fact keeps: the highest ones, enough to see why, small on the row.
_TOP_SCORES = 3
_FAIL_OPEN_HINT = "an operator can set HELIPORT_SAFETY_FAIL_OPEN=true to forward requests when the check cannot run"
#: Anything shaped like an API key, removed from OpenAI's messages before they are relayed.
_KEYLIKE = re.compile(r"\b(?:sk|sess|org|proj)-[A-Za-z0-9_\-*]{4,}")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
#: Caller headers that scope an OpenAI key; sent along with it.
_SCOPING_HEADERS = ("openai-organization", "openai-project")


class ModerationUnavailableError(HeliportError):
    """The check the caller asked for could not run, and the deployment fails closed."""

    status = 503
    code = "moderation_unavailable"


class ModerationRefusedError(HeliportError):
    """OpenAI refused the key the moderation call carried (401/403)."""

    code = "moderation_refused"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, param=HEADER)
        self.status = status


class ModerationRejectedError(RequestError):
    """OpenAI rejected what was screened (an image it cannot fetch, an input too large, ...)."""

    code = "moderation_rejected"


class ModerationNotConfiguredError(RequestError):
    """There is no OpenAI key to screen this request with."""

    code = "moderation_not_configured"


# -- OpenAI's wire format ---------------------------------------------------------------------------


class _Result(msgspec.Struct):
    """One entry of ``results``; only what the check uses is decoded."""

    flagged: bool
    categories: dict[str, bool | None] = msgspec.field(default_factory=dict)
    category_scores: dict[str, float] = msgspec.field(default_factory=dict)


class _Reply(msgspec.Struct):
    results: list[_Result]
    model: str = ""


class _ErrorDetail(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | None = None


class _ErrorReply(msgspec.Struct):
    error: _ErrorDetail


_reply_decoder = msgspec.json.Decoder(_Reply)
_error_decoder = msgspec.json.Decoder(_ErrorReply)


@dataclass(frozen=True, slots=True)
class _Credential:
    """Where the moderation call goes and the headers that authorise it (never logged)."""

    url: str
    headers: tuple[tuple[str, str], ...]
    #: ``caller`` (the caller's own OpenAI key) or ``gateway`` (the deployment's account): for the log.
    source: str


class _CallFailed(Exception):
    """One moderation call did not give a verdict; ``kind`` decides the answer."""

    def __init__(self, kind: str, reason: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(reason)
        #: ``unavailable`` (fail closed / open), ``refused`` (401/403), ``rejected`` (another 4xx).
        self.kind = kind
        self.reason = reason
        self.status = status
        self.detail = detail


# -- the check --------------------------------------------------------------------------------------


class Moderation:
    """The ``Helicone-Moderations-Enabled`` check (a :class:`heliport.exchange.RequestStep`)."""

    def __init__(self, services: StepServices) -> None:
        self._services = services
        self._fail_open = services.settings.safety_fail_open
        overrides = services.settings.upstream_overrides
        default = PROVIDERS["oai"].base_url
        # The bases the proxy's OpenAI routes resolve to (heliport.proxy.targets.TargetResolver): a
        # request bound for one of them carries an OpenAI key for it.
        oai = overrides.get("oai", default).rstrip("/")
        openai = (overrides.get("openai") or overrides.get("oai") or default).rstrip("/")
        self._openai_bases = tuple(dict.fromkeys((oai, openai)))

    def wanted(self, exchange: Exchange, /) -> bool:
        return exchange.options.moderations_enabled

    async def __call__(self, exchange: Exchange, /) -> StepResult:
        body = decode_object(exchange.body)
        found = user_messages(body) if body is not None else []
        if not found:
            reason = "no user message to screen" if body is not None else "the body is not a JSON object"
            return StepResult(facts={FACT: {"screened": False, "reason": reason}})
        message = found[-1]
        try:
            credential = await self._credential(exchange)
        except ModerationNotConfiguredError as err:
            return StepResult(answer=err, facts={FACT: {"screened": False, "error": err.message}})
        except Exception as exc:  # the accounts could not be read (a secret store down): cannot run
            return self._cannot_run(
                exchange, message, f"heliport's provider accounts could not be read ({describe(exc)})"
            )

        started = time.perf_counter()
        try:
            async with asyncio.timeout(_DEADLINE_S):
                replies = await asyncio.gather(*(self._call(credential, parts) for parts in _calls(message)))
        except TimeoutError:
            return self._cannot_run(
                exchange, message, f"OpenAI's moderation endpoint did not answer within {_DEADLINE_S:g} s"
            )
        except _CallFailed as failure:
            return self._failed(exchange, message, credential, failure)
        latency_ms = round((time.perf_counter() - started) * 1000, 1)

        flagged, categories, scores = _merge(replies)
        facts: dict[str, object] = {
            "screened": True,
            "flagged": flagged,
            "categories": categories,
            "top_scores": scores,
            "model": next((reply.model for reply in replies if reply.model), MODEL),
            "message": message.path,
            "images": len(message.images),
            "calls": len(replies),
            "credential": credential.source,
            "latency_ms": latency_ms,
        }
        if not flagged:
            return StepResult(facts={FACT: facts})
        link = _request_page(exchange.scope, exchange.options.request_id)
        answer = {
            "success": False,
            "error": {
                "code": FLAGGED_CODE,
                "message": FLAGGED_MESSAGE,
                "details": f"See your Helicone request page for more info: {link}",
            },
        }
        return StepResult(answer=Answer(400, answer), facts={FACT: facts})

    # -- where the call goes ----------------------------------------------------------------------

    async def _credential(self, exchange: Exchange) -> _Credential:
        target = exchange.target
        if not exchange.via_gateway and target is not None and target.provider == "OPENAI":
            # Both the provider (the route) and the host: an OpenAI route sent elsewhere with
            # Helicone-Target-Url carries a key for that other host.
            base = next((b for b in self._openai_bases if target.url.startswith(b + "/")), None)
            caller = _caller_key(exchange.forward) if base is not None else None
            if base is not None and caller:
                return _Credential(f"{base}/v1/moderations", caller, "caller")
        accounts = await self._services.accounts()
        account = accounts.get("openai") if accounts.available("openai") else None
        if account is not None and account.api_key:
            headers = (("authorization", f"Bearer {account.api_key}"),)
            return _Credential(f"{account.base_url.rstrip('/')}/v1/moderations", headers, "gateway")
        if exchange.via_gateway:
            problem = (
                f"{HEADER} screens prompts with OpenAI's moderation endpoint, using heliport's OpenAI account, "
                "and none is configured: an operator sets OPENAI_API_KEY (in AWS, in the provider secret "
                "HELIPORT_PROVIDER_SECRET_ARN names). Configure it, or send the request without the header."
            )
        else:
            problem = (
                f"{HEADER} screens prompts with OpenAI's moderation endpoint, and there is no OpenAI key for "
                "it: this request does not go to OpenAI with the caller's own key (use /v1/gateway/oai/... "
                "with an OpenAI key in Authorization), and heliport has no OpenAI account (an operator sets "
                "OPENAI_API_KEY). Configure one, or send the request without the header."
            )
        raise ModerationNotConfiguredError(problem, param=HEADER)

    # -- one call -------------------------------------------------------------------------------------

    async def _call(self, credential: _Credential, parts: list[dict[str, object]]) -> _Reply:
        payload = msgspec.json.encode({"model": MODEL, "input": parts})
        headers = [("content-type", "application/json"), ("accept", "application/json"), *credential.headers]
        request = UpstreamRequest("POST", credential.url, headers, payload)
        try:
            response = await self._services.transport().send(request)
        except UpstreamError as exc:
            raise _CallFailed(
                "unavailable", f"OpenAI's moderation endpoint could not be reached ({exc.message})"
            ) from exc
        try:
            data = await _read(response)
        finally:
            response.close()
        status = response.status
        if status == 200:
            try:
                reply = _reply_decoder.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _CallFailed(
                    "unavailable", f"OpenAI's moderation endpoint sent an unreadable answer ({exc})"
                ) from exc
            if not reply.results:
                raise _CallFailed("unavailable", "OpenAI's moderation endpoint sent an answer without results")
            return reply
        detail = _error_detail(data)
        if status in (401, 403):
            raise _CallFailed(
                "refused", f"OpenAI's moderation endpoint answered {status}", status=status, detail=detail
            )
        if status in (404, 429) or not 400 <= status < 500:  # 5xx, and 3xx (redirects are not followed)
            suffix = f" ({detail})" if detail else ""
            raise _CallFailed("unavailable", f"OpenAI's moderation endpoint answered {status}{suffix}", status=status)
        raise _CallFailed("rejected", f"OpenAI's moderation endpoint answered {status}", status=status, detail=detail)

    # -- the answers when there is no verdict -------------------------------------------------------

    def _failed(
        self, exchange: Exchange, message: UserMessage, credential: _Credential, failure: _CallFailed
    ) -> StepResult:
        if failure.kind == "unavailable":
            return self._cannot_run(exchange, message, failure.reason)
        why = f" ({failure.detail})" if failure.detail else ""
        error: HeliportError
        if failure.kind == "refused":
            if credential.source == "caller":
                text = (
                    f"OpenAI's moderation endpoint refused the moderation call {HEADER} asked for, with "
                    f"{failure.status}{why}: the OpenAI key in this request's Authorization header was not "
                    "accepted for POST /v1/moderations. The request was not forwarded."
                )
                error = ModerationRefusedError(text, status=failure.status or 401)
            else:
                text = (
                    f"OpenAI's moderation endpoint refused the moderation call {HEADER} asked for, with "
                    f"{failure.status}{why}: heliport's OpenAI account (OPENAI_API_KEY) was not accepted; an "
                    "operator must fix it. The request was not forwarded."
                )
                error = ModerationRefusedError(text, status=502)
        else:
            text = (
                f"OpenAI's moderation endpoint rejected the message {HEADER} asked to screen ({message.path}), "
                f"with {failure.status}{why}. The request was not forwarded."
            )
            error = ModerationRejectedError(text, param=HEADER)
        facts = {"screened": False, "message": message.path, "credential": credential.source, "error": error.message}
        return StepResult(answer=error, facts={FACT: facts})

    def _cannot_run(self, exchange: Exchange, message: UserMessage, reason: str) -> StepResult:
        """Fail closed (503) by default; with HELIPORT_SAFETY_FAIL_OPEN, go on and say why on the log."""
        facts: dict[str, object] = {"screened": False, "message": message.path, "error": reason}
        if self._fail_open:
            facts["fail_open"] = True
            exchange.errors.append(f"moderation not applied (HELIPORT_SAFETY_FAIL_OPEN): {reason}")
            return StepResult(facts={FACT: facts})
        error = ModerationUnavailableError(
            f"The moderation check {HEADER} asked for could not run: {reason}. The request was not "
            f"forwarded ({_FAIL_OPEN_HINT}).",
            param=HEADER,
        )
        return StepResult(answer=error, facts={FACT: facts})


# -- helpers ------------------------------------------------------------------------------------------


def _caller_key(forward: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...] | None:
    """The caller's OpenAI credential headers, or None when it sent no ``Authorization``."""
    authorization = next((value for name, value in forward if name == "authorization" and value.strip()), None)
    if authorization is None:
        return None
    scoping = tuple((name, value) for name, value in forward if name in _SCOPING_HEADERS)
    return (("authorization", authorization), *scoping)


def _calls(message: UserMessage) -> list[list[dict[str, object]]]:
    """The inputs of the moderation calls for one message: text with the first image, then one per image."""
    first: list[dict[str, object]] = []
    if message.text:
        first.append({"type": "text", "text": message.text})
    images: list[dict[str, object]] = [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
    if images:
        first.append(images[0])
    return [first, *([image] for image in images[1:])]


async def _read(response: UpstreamResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.chunks():
            size += len(chunk)
            if size > _MAX_REPLY_BYTES:
                raise _CallFailed("unavailable", "OpenAI's moderation endpoint sent an oversized answer")
            chunks.append(chunk)
    except UpstreamError as exc:
        raise _CallFailed("unavailable", f"OpenAI's moderation answer was cut off ({exc.message})") from exc
    return b"".join(chunks)


def _error_detail(data: bytes) -> str:
    """OpenAI's error code and message, shortened and with anything key-shaped removed."""
    try:
        error = _error_decoder.decode(data).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
    code = error.code or error.type or ""
    text = _KEYLIKE.sub("[redacted]", error.message)[:300]
    return f"{code}: {text}" if code and text else code or text


def _merge(replies: Sequence[_Reply]) -> tuple[bool, list[str], dict[str, float]]:
    """One verdict from every call's results: flagged if any is, categories joined, scores at their highest."""
    flagged = False
    categories: set[str] = set()
    scores: dict[str, float] = {}
    for reply in replies:
        for result in reply.results:
            flagged = flagged or result.flagged
            categories.update(name for name, hit in result.categories.items() if hit)
            for name, score in result.category_scores.items():
                if score > scores.get(name, -1.0):
                    scores[name] = score
    top = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:_TOP_SCORES]
    return flagged, sorted(categories), {name: round(score, 6) for name, score in top}


def _header(scope: Mapping[str, object], name: bytes) -> str | None:
    headers = scope.get("headers")
    if not isinstance(headers, list | tuple):
        return None
    for key, value in headers:
        if key == name:
            return bytes(value).decode("latin-1").strip()
    return None


def _request_page(scope: Mapping[str, object], request_id: str) -> str:
    """The request's page on heliport's dashboard, absolute when the Host header allows it.

    The host is the one the caller reached (``Host``), behind a TLS-terminating proxy the scheme is
    ``X-Forwarded-Proto``'s; a Host that is no plain host[:port] gives a path without origin instead.
    """
    path = f"/dashboard/#/requests/{request_id}"
    root = scope.get("root_path")
    if isinstance(root, str) and root:
        path = root.rstrip("/") + path
    host = _header(scope, b"host")
    if not host or not _HOST.fullmatch(host):
        return path
    proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else str(scope.get("scheme") or "http")
    return f"{scheme}://{host}{path}"
