"""The secret that signs heliport's own body URLs, one value for every environment of a deployment.

The query API signs ``signed_body_url`` for bodies kept on the row (and for a local blob store) and
the HQL CSV download links with an HMAC (:class:`heliport.api.bodies.BodyLinks`, ``api/hql.py``). In
AWS each Lambda execution environment is its own process: with a random secret per process, a URL
issued by one environment is a 404 in the next. The stack therefore keeps one generated value in
Secrets Manager and names it to the API by ARN (``HELIPORT_BODY_URL_SECRET_ARN``); every environment
reads it once, at cold start, through the bounded reader of :mod:`heliport.store.secrets`.

A secret that cannot be read stops the start with a :class:`~heliport.config.ConfigError` naming the
variable and the secret: falling back to a random secret would issue URLs that work only sometimes
(on the environment that made them), a failure far harder to see than a cold start that fails.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from heliport.config import ConfigError, SecretTimeouts, Settings

__all__ = ["MIN_SECRET_CHARS", "VARIABLE", "with_body_url_secret"]

VARIABLE: Final = "HELIPORT_BODY_URL_SECRET_ARN"
#: Shortest value accepted from the secret. The template generates 64 letters and digits (~380 bits);
#: 32 keeps a hand-set value from being guessable while leaving room for one made another way.
MIN_SECRET_CHARS: Final = 32


def with_body_url_secret(settings: Settings, *, timeouts: SecretTimeouts | None = None) -> Settings:
    """``settings`` with ``body_url_secret`` read from the secret ``body_url_secret_arn`` names; the
    same ``settings`` when no ARN is set. Blocking (botocore): call it at start-up, not in a request."""
    secret_id = settings.body_url_secret_arn
    if secret_id is None:
        return settings
    if settings.body_url_secret is not None:
        # Two sources for one value: whichever won, some environment could be using the other.
        raise ConfigError(f"HELIPORT_BODY_URL_SECRET and {VARIABLE} are both set; set one of them")
    from botocore.exceptions import ClientError  # only an API that reads a secret pays for botocore

    from heliport.store.secrets import read_secret_string

    try:
        text = read_secret_string(
            VARIABLE,
            secret_id,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            timeouts=timeouts or SecretTimeouts(),
        )
    except ClientError as exc:
        # Reached, but refused: a wrong ARN (ResourceNotFoundException), a missing grant or key permission
        # (AccessDeniedException), a secret scheduled for deletion (InvalidRequestException).
        error = exc.response.get("Error", {})
        code, message = error.get("Code", type(exc).__name__), error.get("Message", str(exc))
        raise ConfigError(f"{VARIABLE}: Secrets Manager refused to return {secret_id} ({code}: {message})") from exc
    if len(text) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{VARIABLE}: {secret_id} must hold a SecretString of at least {MIN_SECRET_CHARS} characters "
            f"(it holds {len(text)})"
        )
    return dataclasses.replace(settings, body_url_secret=text.encode())
