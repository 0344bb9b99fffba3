"""``Helicone-*`` request headers, parsed once into one typed :class:`RequestOptions`.

The proxy calls :func:`parse_headers` at the edge; nothing downstream reads a raw header. The same
pass splits off the headers to forward: every ``helicone-*`` header is dropped (it is ours, and some
carry our key), as are hop-by-hop headers; everything else, ``Authorization`` included, is forwarded
unchanged. A malformed value is the caller's error: :class:`InvalidHeaderError` names the header.
``Helicone-Auth`` is the exception: any value heliport cannot use as a key is a 401, as Helicone answers
(see :func:`_auth`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Literal, TypedDict
from urllib.parse import urlsplit

import msgspec

from heliport.errors import AuthenticationError, InvalidHeaderError
from heliport.ratelimit import Policy, parse_policy

__all__ = ["CodeRange", "Fallback", "LogFields", "RequestOptions", "TokenLimitHandler", "bearer_token", "parse_headers"]

RawHeaders = Iterable[tuple[bytes, bytes]]
#: ``Helicone-Token-Limit-Exception-Handler``'s values, as Helicone documents them.
TokenLimitHandler = Literal["truncate", "middle-out", "fallback"]
_TOKEN_LIMIT_HANDLERS: tuple[TokenLimitHandler, ...] = ("truncate", "middle-out", "fallback")

# Headers that describe one hop, not the request: never forwarded (RFC 9110 section 7.6.1), plus
# `host` and `content-length`, which the upstream client sets for the new connection and body.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
_HOP_BY_HOP_NAMES = frozenset(name.decode() for name in _HOP_BY_HOP)
# RFC 9110 section 5.6.2: a field name is a token (ASCII letters, digits and these marks).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5: a field value carries no control character but HTAB; CR or LF would end the
# header line on the wire and smuggle in headers (or a body) of the caller's choosing.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Between an auth scheme and its token: one or more spaces or tabs (RFC 9110 section 11.4 allows 1*SP).
_AUTH_SEPARATOR = re.compile(r"[ \t]+")
_PROPERTY_PREFIX = "helicone-property-"
_MAX_CACHE_BUCKET = 20
_MAX_RETRIES = 10
_MAX_RETRY_WAIT_MS = 60_000


class CodeRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An inclusive range of status codes in a fallback's ``onCodes``."""

    start: int = msgspec.field(name="from")
    end: int = msgspec.field(name="to")


class Fallback(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One entry of ``Helicone-Fallbacks``: where to send the request, and when to move on to the next."""

    target_url: str = msgspec.field(name="target-url")
    headers: dict[str, str]
    on_codes: tuple[int | CodeRange, ...] = msgspec.field(name="onCodes")
    body_key_override: dict[str, object] | None = msgspec.field(default=None, name="bodyKeyOverride")

    def moves_on(self, status: int) -> bool:
        """Whether a response with ``status`` sends the request on to the next fallback."""
        return any(
            status == code if isinstance(code, int) else code.start <= status <= code.end for code in self.on_codes
        )


_fallbacks_decoder = msgspec.json.Decoder(tuple[Fallback, ...])


class RequestOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the caller asked of heliport for one request."""

    request_id: str
    auth_token: str | None = None
    user_id: str | None = None
    properties: dict[str, str] = msgspec.field(default_factory=dict)
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    model_override: str | None = None
    prompt_id: str | None = None
    omit_request: bool = False
    omit_response: bool = False
    target_url: str | None = None
    openai_api_base: str | None = None
    stream_usage: bool = False
    posthog_key: str | None = None
    posthog_host: str | None = None
    #: The pre-forward checks (``heliport.steps``): each runs only when its header asks for it.
    moderations_enabled: bool = False
    llm_security_enabled: bool = False
    llm_security_advanced: bool = False
    token_limit_handler: TokenLimitHandler | None = None
    #: Re-frame a relayed stream so that every chunk ends on an SSE event boundary.
    stream_force_format: bool = False
    cache_enabled: bool = False
    cache_save: bool = False
    cache_read: bool = False
    cache_seed: str | None = None
    cache_bucket_max_size: int = 1
    cache_ignore_keys: tuple[str, ...] = ()
    rate_limit_policy: Policy | None = None
    retry_enabled: bool = False
    retry_num: int = 5
    retry_factor: float = 2.0
    retry_min_timeout_ms: int = 1000
    retry_max_timeout_ms: int = 10_000
    fallbacks: tuple[Fallback, ...] = ()
    #: Every other ``helicone-*`` header, recorded on the log as sent.
    other: dict[str, str] = msgspec.field(default_factory=dict)

    def log_fields(self, *, body_user: str | None = None) -> LogFields:
        """The caller's part of a ``LogRecord``, as its keyword arguments (the user falls back to the body's).

        Here rather than in :mod:`heliport.logs.record` so that the record, which the stores import,
        stays a leaf that does not import the header parser.
        """
        return {
            "user_id": self.user_id or body_user,
            "properties": self.properties,
            "session_id": self.session_id,
            "session_path": self.session_path,
            "session_name": self.session_name,
            "prompt_id": self.prompt_id,
            "model_override": self.model_override,
            "omit_request": self.omit_request,
            "omit_response": self.omit_response,
            "posthog_key": self.posthog_key,
            "posthog_host": self.posthog_host,
            "helicone_headers": self.other,
        }


class LogFields(TypedDict):
    """The ``LogRecord`` fields that come from the request's headers (:meth:`RequestOptions.log_fields`)."""

    user_id: str | None
    properties: dict[str, str]
    session_id: str | None
    session_path: str | None
    session_name: str | None
    prompt_id: str | None
    model_override: str | None
    omit_request: bool
    omit_response: bool
    posthog_key: str | None
    posthog_host: str | None
    helicone_headers: dict[str, str]


def _text(name: str, value: str) -> str:
    return value


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise InvalidHeaderError(name, f"expected 'true' or 'false', got {value!r}")


def _token_limit_handler(name: str, value: str) -> TokenLimitHandler:
    lowered = value.strip().lower()
    for handler in _TOKEN_LIMIT_HANDLERS:
        if lowered == handler:
            return handler
    raise InvalidHeaderError(name, f"expected one of {', '.join(_TOKEN_LIMIT_HANDLERS)}, got {value!r}")


def _posthog_key(name: str, value: str) -> str:
    key = value.strip()
    if not key:
        raise InvalidHeaderError(name, "expected a PostHog project API key (phc_...), got an empty value")
    return key


def _posthog_host(name: str, value: str) -> str:
    """An ``http(s)://host[:port]`` origin; whether that address may be reached is the exporter's check."""
    host = value.strip().rstrip("/")
    problem = _url_problem(host, "the PostHog host")
    if problem is not None:
        raise InvalidHeaderError(name, problem)
    return host


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise InvalidHeaderError(name, f"expected a UUID, got {value!r}") from None


def _scheme_and_token(value: str) -> tuple[str, str]:
    """``("Bearer", "<token>")`` from ``Bearer <token>``; either part may be empty."""
    scheme, *rest = _AUTH_SEPARATOR.split(value.strip(" \t"), maxsplit=1)
    return scheme, rest[0] if rest else ""


def bearer_token(value: str) -> str | None:
    """The token of ``Bearer <token>`` (the scheme in any case), or None if the value is not one."""
    scheme, token = _scheme_and_token(value)
    return token if scheme.lower() == "bearer" and token else None


def _auth(name: str, value: str) -> str | None:
    """The heliport key in ``Helicone-Auth: Bearer <key>``.

    Helicone answers 401 to a ``Helicone-Auth`` it cannot use, whatever is wrong with it, and so does heliport:

    * no key at all (an empty value, ``Bearer``, ``Bearer`` and blanks) is a *missing* key: None, so every
      entry point answers its own 401 "Missing heliport key" exactly as when the header is absent (the AI
      gateway then takes the key from ``Authorization``, as it does for a request without the header);
    * any other scheme (``Basic ...``, ``Token ...``, a bare key without ``Bearer``) is an *unusable* key:
      :class:`AuthenticationError`, a 401 ``invalid_api_key`` naming the header, never a 400.

    A ``Bearer`` token that is no heliport key is left to :meth:`heliport.auth.Authenticator.authenticate`
    (401 "Unknown heliport key").
    """
    scheme, token = _scheme_and_token(value)
    if not scheme or (scheme.lower() == "bearer" and not token):
        return None
    if scheme.lower() != "bearer":
        raise AuthenticationError(f"Invalid {name} header: expected 'Bearer <heliport key>'.", param=name)
    return token


def _bucket_size(name: str, value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise InvalidHeaderError(name, f"expected an integer from 1 to {_MAX_CACHE_BUCKET}, got {value!r}") from None
    if not 1 <= size <= _MAX_CACHE_BUCKET:
        raise InvalidHeaderError(name, f"must be from 1 to {_MAX_CACHE_BUCKET}, got {size}")
    return size


def _key_list(name: str, value: str) -> tuple[str, ...]:
    # Helicone's docs show `a,b` while its parser wants `"a","b"`; both mean the same list.
    keys = []
    for part in value.split(","):
        key = part.strip()
        if len(key) >= 2 and key[0] == key[-1] == '"':
            key = key[1:-1]
        if not key or '"' in key:
            raise InvalidHeaderError(name, f"expected a comma-separated list of body keys, got {value!r}")
        keys.append(key)
    return tuple(keys)


def _int_between(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise InvalidHeaderError(name, f"expected an integer from {low} to {high}, got {value!r}") from None
        if not low <= number <= high:
            raise InvalidHeaderError(name, f"must be from {low} to {high}, got {number}")
        return number

    return parse


def _factor(name: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise InvalidHeaderError(name, f"expected a number from 1 to 10, got {value!r}") from None
    if not 1 <= number <= 10:
        raise InvalidHeaderError(name, f"must be from 1 to 10, got {value.strip()}")
    return number


def _url_problem(url: str, what: str = "target-url") -> str | None:
    """Why a fallback's ``target-url`` is no http(s) URL, or None. Where it may point is the SSRF guard's
    business (:mod:`heliport.proxy.targets`); this only makes sure there is a URL to guard."""
    if _CONTROL.search(url):
        return f"{what} contains a control character"
    stripped = url.strip()  # the guard strips the ends too; a blank inside is no URL
    if not stripped or any(char.isspace() for char in stripped):
        return f"{what} must be a URL without blanks, got {url!r}"
    try:
        parts = urlsplit(stripped)
        parts.port  # noqa: B018  # raises ValueError for a port that is no number from 0 to 65535
    except ValueError:
        return f"{what} is not a valid URL: {url!r}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{what} must be an absolute http(s) URL like https://api.openai.com, got {url!r}"
    return None


def _header_problem(header: str, value: str) -> str | None:
    """Why a fallback's header cannot go on the wire as sent, or None.

    The rules every header on heliport's own connection follows: a token for a name, no control
    character in the value, and none of the hop-by-hop or framing headers (``Transfer-Encoding``,
    ``Content-Length``, ``Host``...) that heliport's HTTP client sets for the body it sends and the
    connection it opened. A caller's such headers are dropped (:func:`parse_headers`); a fallback's are
    refused, since they were written on purpose and dropping them would hide the mistake.
    """
    if not _TOKEN.fullmatch(header):
        return f"header name {header!r} is not an HTTP token (ASCII letters, digits and !#$%&'*+-.^_`|~)"
    if header.lower() in _HOP_BY_HOP_NAMES:
        return f"header {header!r} is a hop-by-hop or framing header, which heliport sets itself"
    if _CONTROL.search(value):
        return f"the value of header {header!r} contains a control character (only HTAB is allowed)"
    return None


def _fallbacks(name: str, value: str) -> tuple[Fallback, ...]:
    try:
        fallbacks = _fallbacks_decoder.decode(value)
    except msgspec.ValidationError as err:
        # msgspec names the offending path, e.g. "Expected `str`, got `int` - at `$[0].target-url`".
        raise InvalidHeaderError(
            name, f'expected a JSON array of {{"target-url", "headers", "onCodes"[, "bodyKeyOverride"]}}: {err}'
        ) from None
    except msgspec.DecodeError:
        raise InvalidHeaderError(name, "expected a JSON array, and this is not valid JSON") from None
    except RecursionError:
        # msgspec stops at the interpreter's recursion limit (a bodyKeyOverride nested ~1000 deep).
        raise InvalidHeaderError(name, "the JSON is nested too deeply") from None
    if not fallbacks:
        raise InvalidHeaderError(name, "expected at least one fallback")
    # Checked here, before any attempt: a bad entry found between attempts would surface as an
    # upstream failure (or a malformed upstream request) after the first fallbacks were already tried.
    # bodyKeyOverride is body content and is kept exactly as sent.
    for index, fallback in enumerate(fallbacks):
        problems = (_url_problem(fallback.target_url), *(_header_problem(h, v) for h, v in fallback.headers.items()))
        problem = next((p for p in problems if p is not None), None)
        if problem is not None:
            raise InvalidHeaderError(name, f"fallback {index}: {problem}")
    return fallbacks


_Parser = Callable[[str, str], object]

# header name -> (RequestOptions field, parser). Header names as they appear in errors.
_FIELDS: dict[str, tuple[str, str, _Parser]] = {
    name.lower(): (name, fieldname, parser)
    for name, fieldname, parser in (
        ("Helicone-Auth", "auth_token", _auth),
        ("Helicone-Request-Id", "request_id", _uuid),
        ("Helicone-User-Id", "user_id", _text),
        ("Helicone-Session-Id", "session_id", _text),
        ("Helicone-Session-Path", "session_path", _text),
        ("Helicone-Session-Name", "session_name", _text),
        ("Helicone-Model-Override", "model_override", _text),
        ("Helicone-Prompt-Id", "prompt_id", _text),
        ("Helicone-Omit-Request", "omit_request", _bool),
        ("Helicone-Omit-Response", "omit_response", _bool),
        ("Helicone-Target-Url", "target_url", _text),
        ("Helicone-OpenAI-Api-Base", "openai_api_base", _text),
        ("Helicone-Stream-Usage", "stream_usage", _bool),
        ("Helicone-Posthog-Key", "posthog_key", _posthog_key),
        ("Helicone-Posthog-Host", "posthog_host", _posthog_host),
        ("Helicone-Moderations-Enabled", "moderations_enabled", _bool),
        ("Helicone-LLM-Security-Enabled", "llm_security_enabled", _bool),
        ("Helicone-LLM-Security-Advanced", "llm_security_advanced", _bool),
        ("Helicone-Token-Limit-Exception-Handler", "token_limit_handler", _token_limit_handler),
        ("Helicone-Stream-Force-Format", "stream_force_format", _bool),
        ("Helicone-Cache-Enabled", "cache_enabled", _bool),
        ("Helicone-Cache-Save", "cache_save", _bool),
        ("Helicone-Cache-Read", "cache_read", _bool),
        ("Helicone-Cache-Seed", "cache_seed", _text),
        ("Helicone-Cache-Bucket-Max-Size", "cache_bucket_max_size", _bucket_size),
        ("Helicone-Cache-Ignore-Keys", "cache_ignore_keys", _key_list),
        ("Helicone-RateLimit-Policy", "rate_limit_policy", parse_policy),
        ("Helicone-Retry-Enabled", "retry_enabled", _bool),
        ("Helicone-Retry-Num", "retry_num", _int_between(0, _MAX_RETRIES)),
        ("Helicone-Retry-Factor", "retry_factor", _factor),
        ("Helicone-Retry-Min-Timeout", "retry_min_timeout_ms", _int_between(0, _MAX_RETRY_WAIT_MS)),
        ("Helicone-Retry-Max-Timeout", "retry_max_timeout_ms", _int_between(0, _MAX_RETRY_WAIT_MS)),
        ("Helicone-Fallbacks", "fallbacks", _fallbacks),
    )
}


def _decode(raw: bytes) -> str:
    # Header values arrive as bytes; clients that send UTF-8 (user ids, property values) get it back.
    # Forwarded values too: the upstream clients (aiohttp, websockets) encode header text as UTF-8, so
    # UTF-8 goes out byte for byte (only bytes that are not UTF-8 at all go out re-encoded).
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_headers(raw: RawHeaders) -> tuple[RequestOptions, list[tuple[str, str]]]:
    """Split ASGI headers into our options and the headers to forward upstream."""
    values: dict[str, object] = {}
    properties: dict[str, str] = {}
    other: dict[str, str] = {}
    forward: list[tuple[str, str]] = []
    unusable_key: AuthenticationError | None = None
    for name_b, value_b in raw:
        name_b = name_b.lower()
        if not name_b.startswith(b"helicone-"):
            if name_b not in _HOP_BY_HOP:
                forward.append((name_b.decode("latin-1"), _decode(value_b)))
            continue
        name = name_b.decode("latin-1")
        value = _decode(value_b)
        if name.startswith(_PROPERTY_PREFIX):
            key = name[len(_PROPERTY_PREFIX) :]
            if key:
                properties[key] = value
            continue
        spec = _FIELDS.get(name)
        if spec is None:
            other[name] = value
            continue
        display, fieldname, parser = spec
        try:
            values[fieldname] = parser(display, value)
        except AuthenticationError as err:
            # Raised once everything else parsed: as with a missing key, what is wrong with the request
            # (400) is reported before who sent it (401), whatever order the headers came in.
            unusable_key = err
    if "request_id" not in values:
        values["request_id"] = str(uuid.uuid4())
    low, high = values.get("retry_min_timeout_ms", 1000), values.get("retry_max_timeout_ms", 10_000)
    if low > high:  # type: ignore[operator]  # both parsed by _int_between
        raise InvalidHeaderError("Helicone-Retry-Max-Timeout", f"must not be below Helicone-Retry-Min-Timeout ({low})")
    if unusable_key is not None:
        raise unusable_key
    options = RequestOptions(properties=properties, other=other, **values)  # type: ignore[arg-type]  # keys come from _FIELDS, which names only RequestOptions fields
    return options, forward
