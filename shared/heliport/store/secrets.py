"""Secrets Manager, read with bounds: the Aurora secret and the provider keys both come through here.

A function in a VPC without NAT reaches Secrets Manager only through an interface endpoint; without
one, botocore's 60 s connect timeout (and its retries) would hang a cold start for minutes. Every
read is bounded by :class:`~heliport.config.SecretTimeouts` and an unreachable service becomes a
:class:`~heliport.config.SecretUnreachableError` that names the variable, the secret and the usual
cause. botocore's client is blocking: async callers run :func:`read_secret_string` in a thread.
"""

from __future__ import annotations

from typing import Any

from heliport.config import SecretTimeouts, SecretUnreachableError

__all__ = ["read_secret_string", "secrets_client"]


def secrets_client(region: str | None, endpoint_url: str | None, timeouts: SecretTimeouts) -> Any:
    """A botocore Secrets Manager client bounded by ``timeouts`` (the caller closes it)."""
    import botocore.config  # only the functions that read a secret pay for botocore
    import botocore.session

    return botocore.session.get_session().create_client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url,
        config=botocore.config.Config(**timeouts.client_config()),
    )


def read_secret_string(
    variable: str,
    secret_id: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    timeouts: SecretTimeouts,
) -> str:
    """The ``SecretString`` of ``secret_id`` (named by the setting ``variable``), or an error that says
    why it could not be read."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    client = secrets_client(region, endpoint_url, timeouts)
    try:
        answer = client.get_secret_value(SecretId=secret_id)
    except (BotoConnectionError, HTTPClientError) as exc:
        cause = f"{type(exc).__name__}: {exc}"
        raise SecretUnreachableError(variable, secret_id, client.meta.endpoint_url, timeouts, cause) from exc
    finally:
        client.close()
    value: str = answer.get("SecretString") or ""
    return value
