"""The Aurora connection string, assembled in the function from the cluster's managed secret.

Aurora's managed master secret (``manage_master_user_password``) holds only ``username`` and
``password``, and RDS rotates it; host, port and database name are Terraform outputs that never
change. So SAM passes the secret's ARN and the endpoint, never a DSN (a DSN resolved into an
environment variable at deploy time would go stale at the first rotation and show the password in
the function's configuration). The secret is read once per execution environment, at cold start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

import msgspec

from heliport.config import ConfigError

__all__ = ["database_url_from_environment"]


def database_url_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """``HELIPORT_DATABASE_URL`` if set; else a DSN built from ``HELIPORT_DATABASE_SECRET_ARN``,
    ``HELIPORT_DATABASE_HOST``, ``HELIPORT_DATABASE_NAME`` (and ``HELIPORT_DATABASE_PORT``); else None."""
    env = os.environ if environ is None else environ
    if env.get("HELIPORT_DATABASE_URL"):
        return env["HELIPORT_DATABASE_URL"]
    secret_arn = env.get("HELIPORT_DATABASE_SECRET_ARN")
    if not secret_arn:
        return None
    host, name = env.get("HELIPORT_DATABASE_HOST"), env.get("HELIPORT_DATABASE_NAME")
    if not host or not name:
        raise ConfigError("HELIPORT_DATABASE_SECRET_ARN needs HELIPORT_DATABASE_HOST and HELIPORT_DATABASE_NAME")
    import botocore.session  # only the functions that reach Aurora pay for it

    client = botocore.session.get_session().create_client(
        "secretsmanager",
        region_name=env.get("HELIPORT_AWS_REGION") or env.get("AWS_REGION"),
        endpoint_url=env.get("HELIPORT_AWS_ENDPOINT_URL") or None,
    )
    try:
        secret = msgspec.json.decode(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    finally:
        client.close()
    if not isinstance(secret, dict) or not secret.get("username") or "password" not in secret:
        raise ConfigError("HELIPORT_DATABASE_SECRET_ARN must hold {username, password} (an RDS managed secret)")
    user, password = quote(str(secret["username"]), safe=""), quote(str(secret["password"]), safe="")
    port = env.get("HELIPORT_DATABASE_PORT", "5432")
    # Aurora accepts TLS; require it whenever the host is not this machine (tests talk to a local server).
    tls = "" if host in ("127.0.0.1", "localhost") else "?sslmode=require"
    return f"postgresql://{user}:{password}@{host}:{port}/{quote(name, safe='')}{tls}"
