"""Google Vertex AI for the unified gateway: Claude (Anthropic Messages) and Gemini (OpenAI-compatible).

Auth: a Google service account's key (``GOOGLE_APPLICATION_CREDENTIALS_JSON`` or ``VERTEXAI_CREDENTIALS``
holding the JSON, or ``GOOGLE_APPLICATION_CREDENTIALS`` naming the file) is exchanged for an OAuth2
access token by ``google-auth`` (the JWT-bearer grant at the key's ``token_uri``; heliport signs no JWT
itself). The token is cached per account for the life of the process and refreshed
:data:`REFRESH_MARGIN_S` before it expires: in a worker thread (google-auth's transport is blocking, the
event loop is not) and one refresh at a time (requests that arrive meanwhile wait for it instead of
stampeding the token endpoint). The project comes from ``VERTEX_PROJECT``/``VERTEXAI_PROJECT`` (or the
key's own ``project_id``), the region from ``VERTEX_LOCATION``/``VERTEXAI_LOCATION`` (``global`` when
unset); ``HELIPORT_UPSTREAM_VERTEX`` replaces the regional host (tests, private endpoints).

Which API a model goes to follows its Vertex publisher:

* **Claude** (``claude-...`` or ``anthropic/claude-...``): Anthropic Messages at the publisher model's
  ``:rawPredict`` (``:streamRawPredict`` for streams). The body is Anthropic's, built by
  :mod:`.anthropic`, minus ``model`` (the URL names it) plus ``anthropic_version: vertex-2023-10-16``;
  the answer and its SSE stream are Anthropic's and are translated back by the same module.
* **Gemini and other Google models** (``gemini-...`` or ``google/gemini-...``): Vertex's
  OpenAI-compatible endpoint (``endpoints/openapi/chat/completions``, model ``google/<id>``). It takes
  what Gemini's own OpenAI-compatible endpoint takes, so the body is filtered as for ``google``, and
  the answer is OpenAI chat already (relayed as is).

Errors: Google's front end answers ``{"error": {"code", "message", "status"}}`` (sometimes inside a
one-element list); a Claude model's own refusals keep Anthropic's shape. :func:`error_message` reads
both, and the handler's failover rules then apply to the status as for any provider.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from heliport.config import ConfigError
from heliport.gateway.chat import JsonObj

if TYPE_CHECKING:
    from google.oauth2.service_account import Credentials as ServiceAccountCredentials

__all__ = [
    "ANTHROPIC_VERSION",
    "REFRESH_MARGIN_S",
    "SCOPE",
    "Target",
    "VertexAuth",
    "VertexSettings",
    "base_url",
    "claude_body",
    "claude_url",
    "error_message",
    "openapi_url",
    "publisher_model",
    "target",
    "vertex_settings",
]

#: The ``anthropic_version`` Vertex's Claude models take in the body (Anthropic's "Claude on Vertex AI" docs).
ANTHROPIC_VERSION = "vertex-2023-10-16"
#: The OAuth2 scope Vertex AI's REST API accepts.
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: A token with less than this left is refreshed before use, so none expires in flight (Google's
#: tokens live an hour; google-auth's own threshold is under four minutes).
REFRESH_MARGIN_S = 300.0
#: The token endpoint is one small POST: a slow one fails this attempt rather than the whole request budget.
_TOKEN_TIMEOUT_S = 10.0
_DEFAULT_LOCATION = "global"

_JSON_ENVS = ("GOOGLE_APPLICATION_CREDENTIALS_JSON", "VERTEXAI_CREDENTIALS", "VERTEX_CREDENTIALS")
_PATH_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
_PROJECT_ENVS = ("VERTEX_PROJECT", "VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT")
_LOCATION_ENVS = ("VERTEX_LOCATION", "VERTEXAI_LOCATION", "GOOGLE_CLOUD_LOCATION")
_KEY_FIELDS = ("client_email", "private_key", "token_uri")


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VertexSettings:
    project: str
    location: str
    auth: VertexAuth


def vertex_settings(values: Mapping[str, str]) -> VertexSettings | None:
    """The Vertex account the values describe; None when no service-account key is configured.

    A key that cannot be read does not stop the other providers from loading: the account exists and
    each use of it fails (a 502 the router fails over from) with the reason.
    """
    raw = next((values[name] for name in _JSON_ENVS if values.get(name)), None)
    problem: str | None = None
    if raw is None:
        path = values.get(_PATH_ENV)
        if not path:
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                raw = handle.read()
        except OSError as exc:
            problem = f"{_PATH_ENV} names a file that cannot be read ({exc.strerror or exc})"
    info: dict[str, Any] = {}
    if raw is not None:
        info, problem = _service_account(raw)
    project = next((values[name] for name in _PROJECT_ENVS if values.get(name)), None) or str(
        info.get("project_id") or ""
    )
    if not project and problem is None:
        problem = "no project: set VERTEX_PROJECT (or put project_id in the service-account key)"
    location = next((values[name] for name in _LOCATION_ENVS if values.get(name)), None) or _DEFAULT_LOCATION
    return VertexSettings(project, location, VertexAuth(info, problem=problem))


def _service_account(raw: str) -> tuple[dict[str, Any], str | None]:
    try:
        info = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}, "the service-account key is not JSON"
    if not isinstance(info, dict):
        return {}, "the service-account key must be a JSON object"
    if info.get("type") != "service_account":
        return {}, f"the key's type is {info.get('type')!r}, not 'service_account'"
    missing = [name for name in _KEY_FIELDS if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        return {}, f"the service-account key has no {', '.join(missing)}"
    return info, None


# -- auth ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class VertexAuth:
    """OAuth2 access tokens for one service account: cached, refreshed early, one refresh at a time."""

    info: dict[str, Any] = field(repr=False)
    #: Why the key cannot be used (every token request raises ConfigError saying so).
    problem: str | None = None
    margin_s: float = REFRESH_MARGIN_S
    _credentials: ServiceAccountCredentials | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    def _fresh(self) -> str | None:
        credentials = self._credentials
        if credentials is None or not credentials.token or credentials.expiry is None:
            return None
        # google-auth keeps expiry as a naive UTC datetime.
        expiry = credentials.expiry.replace(tzinfo=datetime.UTC).timestamp()
        return str(credentials.token) if expiry - time.time() > self.margin_s else None

    async def token(self) -> str:
        """A token valid for at least the margin; raises ConfigError when none can be had."""
        token = self._fresh()
        if token is not None:
            return token
        if self.problem is not None:
            raise ConfigError(f"Vertex AI is not usable: {self.problem}")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            token = self._fresh()  # another request refreshed it while this one waited
            if token is None:
                await asyncio.to_thread(self._refresh)
                token = self._fresh() or (str(self._credentials.token) if self._credentials else None)
        if not token:
            raise ConfigError("Vertex AI's token endpoint answered without an access token")
        return token

    def _refresh(self) -> None:
        """Blocking: runs in a worker thread, under the lock."""
        import google.auth.exceptions
        import urllib3
        from google.auth.transport.urllib3 import Request
        from google.oauth2 import service_account

        if self._credentials is None:
            try:
                self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                    self.info, scopes=[SCOPE]
                )
            except (ValueError, TypeError) as exc:  # e.g. a private_key that is not a PEM key
                self.problem = f"the service-account key is unusable ({exc})"
                raise ConfigError(f"Vertex AI is not usable: {self.problem}") from None
        http = urllib3.PoolManager(timeout=urllib3.Timeout(total=_TOKEN_TIMEOUT_S), retries=False)
        try:
            self._credentials.refresh(Request(http))  # type: ignore[no-untyped-call]
        except google.auth.exceptions.GoogleAuthError as exc:
            # RefreshError's first argument is Google's "error: error_description"; the rest repeats it.
            detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            raise ConfigError(f"Vertex AI access token request failed: {detail}"[:500]) from None
        finally:
            http.clear()


# -- URLs ----------------------------------------------------------------------------------------


def base_url(location: str, override: str | None = None) -> str:
    """Vertex's regional host (``{location}-aiplatform.googleapis.com``; no prefix for ``global``)."""
    if override:
        return override.rstrip("/")
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _location_path(project: str, location: str) -> str:
    return f"/v1/projects/{quote(project, safe='')}/locations/{quote(location, safe='')}"


def claude_url(base: str, project: str, location: str, model: str, *, stream: bool) -> str:
    method = "streamRawPredict" if stream else "rawPredict"
    # '@' is part of Vertex's Claude ids (claude-sonnet-4@20250514) and stays literal, as Google's docs write it.
    return f"{base}{_location_path(project, location)}/publishers/anthropic/models/{quote(model, safe='@')}:{method}"


def openapi_url(base: str, project: str, location: str) -> str:
    return f"{base}{_location_path(project, location)}/endpoints/openapi/chat/completions"


def publisher_model(model: str) -> tuple[str, str]:
    """``(publisher, model id)`` for a Vertex model as the registry or the caller names it."""
    publisher, slash, name = model.partition("/")
    if slash and publisher and name:
        return publisher.lower(), name
    return ("anthropic" if model.lower().startswith("claude") else "google"), model


# -- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where one Vertex attempt goes: the publisher's API, under the id that API wants."""

    #: ``anthropic`` (Messages at rawPredict) or another publisher (the OpenAI-compatible endpoint).
    publisher: str
    #: Claude: the bare Vertex id (``claude-sonnet-4@20250514``); otherwise ``publisher/id`` as the body's model.
    model: str
    url: str


def target(model_id: str, *, project: str, location: str | None, override: str | None, stream: bool) -> Target:
    """The attempt for ``model_id`` (as the registry or the caller names it) in ``project``/``location``."""
    location = location or _DEFAULT_LOCATION
    base = base_url(location, override)
    publisher, model = publisher_model(model_id)
    if publisher == "anthropic":
        return Target(publisher, model, claude_url(base, project, location, model, stream=stream))
    return Target(publisher, f"{publisher}/{model}", openapi_url(base, project, location))


def claude_body(chat: JsonObj, model: str, *, stream: bool, caller_betas: str | None = None) -> JsonObj:
    """Anthropic's Messages body as Vertex takes it: no ``model`` (the URL names it), its own
    ``anthropic_version``, and beta flags (context editing's, the caller's ``anthropic-beta``) in
    the body as ``anthropic_beta``."""
    from heliport.gateway import anthropic
    from heliport.gateway.context_editing import merge_beta_header, required_betas

    native = anthropic.chat_to_messages(chat, model=model)
    native.pop("model", None)
    native["anthropic_version"] = ANTHROPIC_VERSION
    native["stream"] = stream
    betas = required_betas(native)
    if betas or caller_betas:
        native["anthropic_beta"] = merge_beta_header(caller_betas, betas).split(",")
    return native


# -- errors --------------------------------------------------------------------------------------


def error_message(body: object) -> str:
    """The human part of a Vertex error: Google's ``{"error": {code, message, status}}`` (also as a
    one-element list), or Anthropic's shape from a Claude model."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        return str(body)[:500]
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        status = error.get("status") or error.get("type")
        if isinstance(message, str) and message:
            return f"{status}: {message}" if isinstance(status, str) and status else message
        if isinstance(status, str):
            return status
    if isinstance(error, str) and error:
        description = body.get("error_description")
        return f"{error}: {description}" if isinstance(description, str) else error
    message = body.get("message")
    return message if isinstance(message, str) and message else str(body)[:500]
