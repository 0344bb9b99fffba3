"""``heliport smoke <GatewayUrl> --key <heliport key>``: does a deployment answer, end to end?

Run after ``sam deploy`` from the user's machine, where only heliport is installed: the checks speak
plain HTTP with aiohttp (a runtime dependency), as an app would, in five steps:

1. ``passthrough-json``: ``POST /v1/gateway/oai/v1/chat/completions`` with ``Helicone-Auth`` and the
   user's OpenAI key; a 200 with a ``Helicone-Id`` header and ``choices``.
2. ``passthrough-stream``: the same, streamed; SSE events that end with ``data: [DONE]`` (the time to
   the first event is reported).
3. ``gateway-json``: ``POST /v1/chat/completions`` with the heliport key as the API key (the provider
   key is the deployment's); a 200 with a ``Helicone-Provider`` header.
4. ``gateway-stream``: the same, streamed.
5. ``log-readback``: ``POST /v1/request/query`` for step 1's ``Helicone-Id`` (step 3's when the
   pass-through steps are skipped) until the row is there: the queue, the consumer, the database
   and the query API all work.

Each step prints ``PASS <step> (<ms> ms)`` or ``FAIL <step>: <reason>`` (``SKIP`` when asked to); the
exit status is 1 when any step failed. The ``GatewayUrl`` output already ends with the stage
(``https://<id>.execute-api.<region>.amazonaws.com/v1``), so paths are appended to it as given.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

import aiohttp

__all__ = ["STEPS", "SmokeOptions", "run", "run_smoke"]

STEPS = ("passthrough-json", "passthrough-stream", "gateway-json", "gateway-stream", "log-readback")

PASSTHROUGH_PATH = "/v1/gateway/oai/v1/chat/completions"
GATEWAY_PATH = "/v1/chat/completions"
QUERY_PATH = "/v1/request/query"
#: One short answer: enough to prove the round trip, as cheap as a call can be.
PROMPT = [{"role": "user", "content": "Reply with the single word: pong"}]
#: Seconds between two looks for the logged row.
POLL_INTERVAL = 1.0
#: API Gateway's answer when no resource and method match the path (not an authentication problem).
_NO_ROUTE = "Missing Authentication Token"

Status = Literal["PASS", "FAIL", "SKIP"]


@dataclass(frozen=True, slots=True)
class SmokeOptions:
    url: str
    key: str
    openai_key: str | None
    model: str = "gpt-4o-mini"
    openai_model: str = "gpt-4o-mini"
    timeout: float = 60.0
    log_timeout: float = 60.0
    skip_passthrough: bool = False
    skip_gateway: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    step: str
    status: Status
    ms: int = 0
    detail: str = ""
    #: The ``Helicone-Id`` the deployment answered with, failed calls included (heliport logs those too).
    request_id: str | None = None

    def line(self) -> str:
        if self.status == "PASS":
            return f"PASS {self.step} ({self.ms} ms{'; ' + self.detail if self.detail else ''})"
        if self.status == "SKIP":
            return f"SKIP {self.step} ({self.detail})"
        return f"FAIL {self.step}: {self.detail}"


@dataclass(frozen=True, slots=True)
class _Passed:
    detail: str = ""
    request_id: str | None = None


class _Failed(Exception):
    """A check did not hold; ``reason`` is the one line the user reads."""

    def __init__(self, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _http_error(status: int, body: bytes) -> str:
    """``HTTP <status>: <message>``, the message taken from OpenAI's, Helicone's or API Gateway's error shape."""
    text = body.decode("utf-8", "replace")
    message = text
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
        elif isinstance(error, str) and error:
            message = error
        elif parsed.get("message"):
            message = str(parsed["message"])
    reason = f"HTTP {status}: {_one_line(message) or '(empty body)'}"
    if status == 403 and message == _NO_ROUTE:
        reason += " (API Gateway has no route for this path: is the URL the GatewayUrl output, stage included?)"
    return reason


def _choices(body: bytes) -> None:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _Failed(f"200 but the body is not JSON: {_one_line(body.decode('utf-8', 'replace'), 120)}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list) or not parsed["choices"]:
        raise _Failed(f"200 but the body has no choices: {_one_line(json.dumps(parsed), 120)}")


class _Checks:
    """The five steps over one HTTP session; each returns :class:`_Passed` or raises :class:`_Failed`."""

    def __init__(self, session: aiohttp.ClientSession, options: SmokeOptions) -> None:
        self._session = session
        self._options = options
        self._base = options.url.rstrip("/")

    def _passthrough_headers(self) -> dict[str, str]:
        if not self._options.openai_key:
            raise _Failed("no OpenAI key for the pass-through: give --openai-key or set OPENAI_API_KEY")
        # Helicone-Auth is heliport's; Authorization goes to OpenAI unchanged.
        return {"Helicone-Auth": f"Bearer {self._options.key}", "Authorization": f"Bearer {self._options.openai_key}"}

    def _gateway_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._options.key}"}

    async def _post(
        self, path: str, headers: Mapping[str, str], payload: object
    ) -> tuple[int, Mapping[str, str], bytes]:
        async with self._session.post(self._base + path, json=payload, headers=dict(headers)) as response:
            return response.status, response.headers, await response.read()

    async def _completion(self, path: str, headers: Mapping[str, str], model: str) -> Mapping[str, str]:
        status, answer_headers, body = await self._post(path, headers, {"model": model, "messages": PROMPT})
        if status != 200:
            raise _Failed(_http_error(status, body), answer_headers.get("Helicone-Id"))
        _choices(body)
        return answer_headers

    async def _stream(self, path: str, headers: Mapping[str, str], model: str) -> tuple[int, Mapping[str, str]]:
        """Reads an SSE completion to its end; returns the ms to the first event and the response headers."""
        payload = {"model": model, "messages": PROMPT, "stream": True, "stream_options": {"include_usage": True}}
        started = time.monotonic()
        async with self._session.post(self._base + path, json=payload, headers=dict(headers)) as response:
            request_id = response.headers.get("Helicone-Id")
            if response.status != 200:
                raise _Failed(_http_error(response.status, await response.read()), request_id)
            first: float | None = None
            events = 0
            last = ""
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event: lines
                first = first or time.monotonic()
                events += 1
                last = line[len("data:") :].strip()
                if last != "[DONE]" and '"error"' in last:
                    _raise_error_event(last, request_id)
            if first is None:
                raise _Failed("200 but no SSE event arrived", request_id)
            if last != "[DONE]":
                raise _Failed(f"the stream ended after {events} events without data: [DONE]", request_id)
            return round((first - started) * 1000), response.headers

    async def passthrough_json(self) -> _Passed:
        headers = await self._completion(PASSTHROUGH_PATH, self._passthrough_headers(), self._options.openai_model)
        request_id = headers.get("Helicone-Id")
        if not request_id:
            raise _Failed("200 but no Helicone-Id header: the answer did not come through heliport")
        return _Passed(f"Helicone-Id {request_id}", request_id)

    async def passthrough_stream(self) -> _Passed:
        first_ms, _ = await self._stream(PASSTHROUGH_PATH, self._passthrough_headers(), self._options.openai_model)
        return _Passed(f"first event after {first_ms} ms")

    async def gateway_json(self) -> _Passed:
        headers = await self._completion(GATEWAY_PATH, self._gateway_headers(), self._options.model)
        return _Passed(f"served by {_provider(headers)}", headers.get("Helicone-Id"))

    async def gateway_stream(self) -> _Passed:
        first_ms, headers = await self._stream(GATEWAY_PATH, self._gateway_headers(), self._options.model)
        return _Passed(f"served by {_provider(headers)}, first event after {first_ms} ms")

    async def log_readback(self, request_id: str) -> _Passed:
        """Polls the query API for the request's row: the log path is asynchronous (queue, then consumer)."""
        query = {"filter": {"request_response_rmt": {"request_id": {"equals": request_id}}}, "limit": 1}
        started = time.monotonic()
        deadline = started + self._options.log_timeout
        waiting_on = "no row yet"
        while True:
            try:
                status, _, body = await self._post(QUERY_PATH, self._gateway_headers(), query)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # A cold query function in the VPC can be slow or briefly unreachable: keep looking.
                waiting_on = _transport_error(exc, self._options.timeout)
            else:
                if status == 200:
                    if _has_row(body, request_id):
                        return _Passed(f"row visible after {time.monotonic() - started:.1f} s")
                    waiting_on = "no row yet"
                elif 400 <= status < 500 and status not in (408, 429):
                    raise _Failed(f"the query API refused: {_http_error(status, body)}")  # waiting cannot fix it
                else:
                    waiting_on = _http_error(status, body)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Failed(f"no row for {request_id} after {self._options.log_timeout:g} s ({waiting_on})")
            await asyncio.sleep(min(POLL_INTERVAL, remaining))


def _provider(headers: Mapping[str, str]) -> str:
    """The provider the AI gateway says served the call; its absence means heliport did not answer."""
    provider = headers.get("Helicone-Provider")
    if not provider:
        raise _Failed("200 but no Helicone-Provider header", headers.get("Helicone-Id"))
    return provider


def _raise_error_event(data: str, request_id: str | None) -> None:
    """OpenAI reports a failure that happens mid-stream as a ``data: {"error": ...}`` event."""
    try:
        event = json.loads(data)
    except ValueError:
        return
    if isinstance(event, dict) and event.get("error"):
        raise _Failed(f"error event in the stream: {_one_line(json.dumps(event['error']))}", request_id)


def _has_row(body: bytes, request_id: str) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _Failed(
            f"the query API answered 200 without JSON: {_one_line(body.decode('utf-8', 'replace'))}"
        ) from None
    rows = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(rows, list):
        raise _Failed(f"the query API answered without a data list: {_one_line(json.dumps(parsed))}")
    wanted = request_id.lower()
    return any(isinstance(row, dict) and str(row.get("request_id", "")).lower() == wanted for row in rows)


def _transport_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return _one_line(f"cannot connect: {exc}")
    return _one_line(f"{type(exc).__name__}: {exc}")


async def _timed(step: str, check: Callable[[], Awaitable[_Passed]], request_timeout: float) -> Outcome:
    started = time.monotonic()
    try:
        passed = await check()
    except _Failed as failure:
        return Outcome(step, "FAIL", detail=failure.reason, request_id=failure.request_id)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(step, "FAIL", detail=_transport_error(exc, request_timeout))
    except Exception as exc:  # anything unforeseen (an over-long SSE line, ...) fails the step, not the command
        return Outcome(step, "FAIL", detail=_one_line(f"{type(exc).__name__}: {exc}"))
    elapsed = round((time.monotonic() - started) * 1000)
    return Outcome(step, "PASS", elapsed, passed.detail, passed.request_id)


async def run_smoke(options: SmokeOptions, emit: Callable[[str], None]) -> list[Outcome]:
    """Runs the steps in order, handing each result line to ``emit`` as soon as it is known."""
    outcomes: dict[str, Outcome] = {}

    def record(outcome: Outcome) -> None:
        outcomes[outcome.step] = outcome
        emit(outcome.line())

    timeout = aiohttp.ClientTimeout(total=options.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        checks = _Checks(session, options)
        planned: list[tuple[str, Callable[[], Awaitable[_Passed]], str | None]] = [
            ("passthrough-json", checks.passthrough_json, "--skip-passthrough" if options.skip_passthrough else None),
            (
                "passthrough-stream",
                checks.passthrough_stream,
                "--skip-passthrough" if options.skip_passthrough else None,
            ),
            ("gateway-json", checks.gateway_json, "--skip-gateway" if options.skip_gateway else None),
            ("gateway-stream", checks.gateway_stream, "--skip-gateway" if options.skip_gateway else None),
        ]
        for step, check, skipped_by in planned:
            record(
                Outcome(step, "SKIP", detail=skipped_by) if skipped_by else await _timed(step, check, options.timeout)
            )

        # The row of the first call that reached heliport, a failed one included: its log is as good a proof.
        sources = [outcomes["passthrough-json"], outcomes["gateway-json"]]
        request_id = next((o.request_id for o in sources if o.request_id), None)
        if request_id is not None:
            record(await _timed("log-readback", partial(checks.log_readback, request_id), options.timeout))
        elif all(o.status == "SKIP" for o in sources):
            record(Outcome("log-readback", "SKIP", detail="no request was sent to look up"))
        else:
            record(Outcome("log-readback", "FAIL", detail="no Helicone-Id to look up: no call reached heliport"))
    return list(outcomes.values())


def run(options: SmokeOptions) -> int:
    """The ``heliport smoke`` command: prints a line per step and a summary; 1 when any step failed."""
    print(f"heliport smoke: {options.url.rstrip('/')}", flush=True)
    outcomes = asyncio.run(run_smoke(options, lambda line: print(line, flush=True)))
    counts = {status: sum(o.status == status for o in outcomes) for status in ("PASS", "FAIL", "SKIP")}
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped", flush=True)
    return 1 if counts["FAIL"] else 0
