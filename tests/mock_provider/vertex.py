"""Google Vertex AI for the mock provider: the OAuth2 token endpoint and the two model APIs heliport uses.

* ``POST /token``: Google's token endpoint for the JWT-bearer grant (RFC 7523), as a service
  account's ``token_uri`` names it. The assertion's RS256 signature is checked with ``cryptography``
  against the public key registered for its ``kid`` (:meth:`VertexMock.register`), and its claims as
  Google checks them (``iss`` the registered account, ``aud`` this endpoint, the cloud-platform
  scope, at most an hour of life). Errors are Google's ``{"error", "error_description"}``.
* ``POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict`` (and
  ``:streamRawPredict``): Claude as Anthropic Messages. The body must carry
  ``anthropic_version: vertex-2023-10-16`` and no ``model``; the answer is the mock's Anthropic one.
* ``POST /v1/projects/{p}/locations/{l}/endpoints/openapi/chat/completions``: Vertex's
  OpenAI-compatible endpoint; the model must be ``publisher/id`` (``google/gemini-2.5-flash``).

Every model call must carry a bearer token the token endpoint issued and that has not expired;
otherwise Google's 401 ``UNAUTHENTICATED``. ``x-mock-status`` (and ``mock-status-<code>`` in a
registered account's email) give Google's error bodies; ``x-mock-error-list: 1`` wraps the error in
a one-element list, as some Vertex endpoints do.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.responses import Response

from .fixtures import encode
from .recorder import Recorder

JSON_TYPE = "application/json"
TOKEN_PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ANTHROPIC_VERSION = "vertex-2023-10-16"
_PROJECTS = "/v1/projects/"
_CLAUDE = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$"
)
_OPENAPI = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/endpoints/openapi/chat/completions$")
_FORCED_STATUS = re.compile(r"mock-status-(\d{3})")

#: Google's canonical status names for the HTTP statuses tests ask for.
_GOOGLE_STATUS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not exist)."),
    404: ("NOT_FOUND", "Publisher Model was not found or your project does not have access to it."),
    429: ("RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later."),
    500: ("INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}

Delegate = Callable[[Mapping[str, Any], Mapping[str, str]], Awaitable[Response]]


def google_error(status: int, message: str | None = None, *, as_list: bool = False) -> Response:
    """Google's API error body ``{"error": {code, message, status}}`` (optionally in a list)."""
    name, default = _GOOGLE_STATUS.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", "Mock error."))
    error: Any = {"error": {"code": status, "message": message or default, "status": name}}
    headers = {"retry-after": "0"} if status == 429 else {}
    return Response(encode([error] if as_list else error), status_code=status, headers=headers, media_type=JSON_TYPE)


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response(
        encode({"error": error, "error_description": description}), status_code=status, media_type=JSON_TYPE
    )


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass(slots=True)
class _Account:
    public_key: rsa.RSAPublicKey
    client_email: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    client_email: str
    expires_at: float


class VertexMock:
    """Registered service accounts, the tokens issued to them, and Vertex's routes."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        #: When set, the token endpoint parks each request at this recorder gate until it is released
        #: (tests use it to hold a refresh in flight). google-auth's request carries no x-mock headers.
        self.token_gate: str | None = None
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, IssuedToken] = {}
        #: Every token issued, in order (tests see refreshes here).
        self.issued: list[IssuedToken] = []
        #: Token requests the endpoint refused, with the reason.
        self.refused: list[str] = []

    def register(self, key_id: str, public_key_pem: bytes, client_email: str, *, expires_in: int = 3600) -> None:
        """Trust ``public_key_pem`` for assertions with header ``kid`` = ``key_id``; tokens live ``expires_in`` s."""
        key = serialization.load_pem_public_key(public_key_pem)
        assert isinstance(key, rsa.RSAPublicKey)
        self._accounts[key_id] = _Account(key, client_email, expires_in)

    def set_lifetime(self, key_id: str, expires_in: int) -> None:
        self._accounts[key_id].expires_in = expires_in

    def reset(self) -> None:
        self._tokens.clear()
        self.issued.clear()
        self.refused.clear()

    @staticmethod
    def handles(method: str, path: str) -> bool:
        return method == "POST" and (path == TOKEN_PATH or path.startswith(_PROJECTS))

    async def dispatch(
        self, path: str, body: bytes, headers: Mapping[str, str], *, messages: Delegate, chat: Delegate
    ) -> Response:
        """The token endpoint, or a model call handed to the mock's Anthropic / OpenAI replies."""
        if path == TOKEN_PATH:
            if self.token_gate is not None:
                await self._recorder.wait_gate(self.token_gate, limit_s=10.0)
            return self._token(body, headers)
        claude, openapi = _CLAUDE.match(path), _OPENAPI.match(path)
        if claude is None and openapi is None:
            return google_error(404, f"The requested URL {path} was not found on this server.")
        as_list = headers.get("x-mock-error-list") == "1"
        authorization = headers.get("authorization", "")
        issued = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if not authorization.startswith("Bearer ") or issued is None or issued.expires_at <= time.time():
            return google_error(401, as_list=as_list)
        forced = _FORCED_STATUS.search(issued.client_email)  # an account that always fails
        status = int(forced.group(1)) if forced else None
        if status is None and headers.get("x-mock-status", "").strip().isdigit():
            status = int(headers["x-mock-status"])
        if status is not None and status >= 400:
            return google_error(status, as_list=as_list)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return google_error(400, "Invalid JSON payload received.", as_list=as_list)
        if not isinstance(payload, dict):
            return google_error(400, "Invalid JSON payload received. Expected an object.", as_list=as_list)
        if claude is not None:
            model, method = unquote(claude.group(3)), claude.group(4)
            if payload.get("anthropic_version") != ANTHROPIC_VERSION:
                return google_error(400, f"anthropic_version: must be {ANTHROPIC_VERSION!r}", as_list=as_list)
            if "model" in payload:
                return google_error(400, "model: Extra inputs are not permitted (the URL names the model)")
            if (method == "streamRawPredict") != (payload.get("stream") is True):
                return google_error(400, f"{method} does not match stream={payload.get('stream')!r}")
            return await messages({**payload, "model": model}, headers)
        wire_model = payload.get("model")
        if not isinstance(wire_model, str) or "/" not in wire_model:
            return google_error(
                400, f"model must be 'publisher/model', e.g. 'google/gemini-2.5-flash', not {wire_model!r}"
            )
        return await chat(payload, headers)

    # -- the token endpoint ------------------------------------------------------------------

    def _token(self, body: bytes, headers: Mapping[str, str]) -> Response:
        form = {name: values[0] for name, values in parse_qs(body.decode("latin-1")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return self._refuse("unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type')}")
        assertion = form.get("assertion", "")
        parts = assertion.split(".")
        if len(parts) != 3:
            return self._refuse(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
            )
        try:
            header, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except ValueError:
            return self._refuse("invalid_grant", "Invalid JWT: not base64url JSON")
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            return self._refuse("invalid_grant", "Invalid JWT: alg must be RS256")
        account = self._accounts.get(str(header.get("kid")))
        if account is None:
            return self._refuse("invalid_grant", "Invalid JWT Signature.")  # what Google says for an unknown key
        try:
            signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
            account.public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self._refuse("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        # google-auth addresses the assertion to Google's token URL whatever token_uri says (Google
        # requires that audience); an assertion addressed to this endpoint itself is accepted too.
        audiences = (GOOGLE_TOKEN_URL, f"http://{headers.get('host', '')}{TOKEN_PATH}")
        problems = [
            claims.get("iss") != account.client_email and "iss is not the key's service account",
            claims.get("aud") not in audiences and f"aud {claims.get('aud')!r} is not {GOOGLE_TOKEN_URL!r}",
            SCOPE not in str(claims.get("scope", "")).split() and "scope lacks cloud-platform",
            not isinstance(claims.get("iat"), int) and "iat missing",
            not isinstance(claims.get("exp"), int) and "exp missing",
        ]
        if not any(problems) and not (claims["iat"] - 300 <= now < claims["exp"] <= claims["iat"] + 3600):
            problems.append("Token must be a short-lived token (60 minutes) and in a reasonable timeframe")
        reasons = [p for p in problems if p]
        if reasons:
            return self._refuse("invalid_grant", "Invalid JWT: " + "; ".join(str(r) for r in reasons))
        issued = IssuedToken("ya29.mock-" + secrets.token_urlsafe(24), account.client_email, now + account.expires_in)
        self._tokens[issued.token] = issued
        self.issued.append(issued)
        reply = {"access_token": issued.token, "expires_in": account.expires_in, "token_type": "Bearer"}
        return Response(encode(reply), media_type=JSON_TYPE, headers={"cache-control": "no-store"})

    def _refuse(self, error: str, description: str) -> Response:
        self.refused.append(description)
        return _oauth_error(error, description)
