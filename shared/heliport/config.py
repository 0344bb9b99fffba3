"""Deployment settings, read once from the environment.

A plain frozen dataclass rather than pydantic-settings: the proxy's Lambda entry imports this module
on every cold start, and a hand-rolled parser of a dozen variables costs microseconds, not 100 ms.
Every bad value raises :class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MAX_JSON_DEPTH", "MIN_JSON_DEPTH", "ConfigError", "SecretTimeouts", "SecretUnreachableError", "Settings"]

_PREFIX = "HELIPORT_"
#: Bounds on ``HELIPORT_MAX_JSON_DEPTH``. Below 16, ordinary chat bodies (message > content part > image,
#: tool > function > parameter schema) would be refused; above 512, a body could pass the check and still
#: be too deep for the decoders and encoders behind it, which stop near the recursion limit.
MIN_JSON_DEPTH = 16
MAX_JSON_DEPTH = 512


class ConfigError(ValueError):
    """A deployment setting is missing or malformed (an operator's error, not a request's)."""


@dataclass(frozen=True)
class SecretTimeouts:
    """Bounds on every Secrets Manager call heliport makes (the Aurora secret, the provider keys).

    botocore's defaults are a 60 s connect timeout, a 60 s read timeout and several attempts: in a
    VPC without NAT and without an interface endpoint for secretsmanager the connection never
    opens, and a cold start would hang for minutes before failing. GetSecretValue answers in tens
    of milliseconds when it is reachable, so a few seconds per attempt and two attempts (one retry
    for a transient failure) are plenty, and keep the worst case (~12 s) inside the query API's 29 s.
    """

    connect: float = 3.0
    read: float = 3.0
    #: Total attempts, the first included (botocore's ``total_max_attempts``).
    attempts: int = 2

    def client_config(self) -> dict[str, object]:
        """Keyword arguments for ``botocore.config.Config``."""
        return {
            "connect_timeout": self.connect,
            "read_timeout": self.read,
            "retries": {"mode": "standard", "total_max_attempts": self.attempts},
        }


class SecretUnreachableError(ConfigError):
    """Secrets Manager did not answer within the bounds of :class:`SecretTimeouts`.

    A deployment problem (a route, an endpoint, a security group), so a :class:`ConfigError`; the
    message names the variable, the secret, the endpoint and the bounds, and the usual cause.
    """

    def __init__(self, variable: str, secret_id: str, endpoint: str, timeouts: SecretTimeouts, cause: str) -> None:
        super().__init__(
            f"{variable}: could not reach Secrets Manager at {endpoint} to read {secret_id} within "
            f"{timeouts.connect:g} s to connect and {timeouts.read:g} s to answer, {timeouts.attempts} attempt(s) "
            f"({cause}). No route from the VPC? (interface endpoint for secretsmanager)"
        )


@dataclass(frozen=True)
class Timeouts:
    """Upstream timeouts in seconds. ``read`` is the longest silence between two upstream chunks."""

    connect: float = 10.0
    read: float = 600.0

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0:
            raise ConfigError("timeouts must be positive")


@dataclass(frozen=True)
class Settings:
    """Everything a heliport process needs to know about its deployment."""

    host: str = "127.0.0.1"
    port: int = 8585
    data_dir: Path = Path(".heliport")
    #: Provider slug -> base URL, replacing the public default (``HELIPORT_UPSTREAM_OAI=http://...``).
    upstream_overrides: Mapping[str, str] = field(default_factory=dict)
    #: Extra host patterns allowed for ``Helicone-Target-Url`` (``*.example.com`` or ``api.example.com``).
    target_hosts: tuple[str, ...] = ()
    #: Exact origins (``scheme://host[:port]``) an operator vouches for: no https or address checks.
    trusted_origins: frozenset[str] = frozenset()
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: Seconds a key lookup (hit or miss) is remembered in memory; revocation takes this long to bite.
    auth_cache_ttl: float = 60.0
    #: Largest request body accepted, in bytes.
    max_request_bytes: int = 32 * 1024 * 1024
    #: Largest body of a query API or dashboard API request (413 above): filters are small, and a cap
    #: keeps a parser from being a target.
    max_query_body_bytes: int = 1024 * 1024
    #: Deepest nesting of objects and arrays accepted in a JSON body (``{}`` is 1 deep, ``{"a": []}`` 2):
    #: the AI gateway's routes, the manual logger's endpoint, the query API and realtime frames. Every JSON
    #: decoder in Python recurses once per level and gives up near the interpreter's recursion limit (~1000
    #: frames, less whatever the server's own stack holds); an explicit bound well below that keeps what
    #: is decoded encodable and walkable later. 128 is four times the deepest real bodies: a chat request
    #: whose tool schema nests objects ten levels deep (each level is ``properties`` > name) is about 30
    #: deep, and ordinary ones 5-10. Between :data:`MIN_JSON_DEPTH` and :data:`MAX_JSON_DEPTH`.
    max_json_depth: int = 128
    #: Largest copy of a response body kept for the log; the rest is relayed but not copied.
    max_logged_body_bytes: int = 8 * 1024 * 1024
    #: Bodies whose gzip JSON is at most this many bytes are kept on the request's row instead of the
    #: blob store (no S3 PUT); 0 puts every one in the blob store, 1 MiB at most (``heliport.logs.stored_bodies``).
    inline_body_bytes: int = 4096
    #: Finish the log hand-off before the response's last byte: a client that saw a complete answer
    #: saw a durable record (a local crash or Lambda's freeze after the last byte loses nothing).
    log_before_last_byte: bool = True
    #: On Lambda, register the proxy as an internal Lambda extension that keeps the environment from
    #: freezing until the log hand-offs of an invocation are done, so records go out after the last
    #: byte (:mod:`heliport.lambda_extension`; on Managed Instances: after it, without registering).
    lambda_extension: bool = False
    #: Log hand-offs still outstanding after their responses beyond which new requests wait
    #: (:mod:`heliport.logs.backlog`): bounds memory when the log queue falls behind.
    max_log_backlog: int = 1000
    #: AWS adapters are used when these are set (the Lambda functions); otherwise the local ones.
    table_name: str | None = None
    queue_url: str | None = None
    bucket: str | None = None
    aws_region: str | None = None
    #: Points the AWS clients at another endpoint (moto's server in tests).
    aws_endpoint_url: str | None = None
    #: PostgreSQL DSN of the log database; the local default is SQLite in the data directory.
    database_url: str | None = None
    #: Aurora without a fixed DSN: the RDS managed secret ({username, password}) and where the cluster is.
    #: ``store.aurora`` turns them into a DSN when the first connection is opened (and again after a rotation).
    database_secret_arn: str | None = None
    database_host: str | None = None
    database_name: str | None = None
    database_port: int = 5432
    #: Seconds the query API waits for a database connection before answering 503 with Retry-After
    #: (Aurora Serverless v2 takes 15-30 s to resume from 0 ACU; API Gateway gives up at 29 s).
    database_connect_timeout: float = 10.0
    #: Signs the query API's local body URLs (``signed_body_url``); a random one per process if unset.
    body_url_secret: bytes | None = None
    #: In AWS, the Secrets Manager secret whose value is ``body_url_secret``, the same in every execution
    #: environment (``HELIPORT_BODY_URL_SECRET_ARN``); read once at cold start by
    #: :func:`heliport.api.body_secret.with_body_url_secret`, never here (this module does no I/O).
    body_url_secret_arn: str | None = None
    #: Realtime relay: seconds between the log writes of a live session (it is also written on close).
    realtime_log_interval: float = 30.0
    #: Realtime relay: a session with no frame in either direction for this long is closed.
    realtime_idle_timeout: float = 300.0
    #: ``Helicone-LLM-Security-Enabled``'s prompt-injection classifier, ``<provider>:<model>`` over one of
    #: the AI gateway's provider accounts (``groq:meta-llama/llama-prompt-guard-2-86m``).
    prompt_guard_model: str | None = None
    #: Prompt Guard's score (probability of an attack) at or above which a message is a threat.
    prompt_guard_threshold: float = 0.5
    #: ``Helicone-LLM-Security-Advanced``'s 14-category safety classifier, ``<provider>:<model>``
    #: (``groq:meta-llama/llama-guard-4-12b``).
    llama_guard_model: str | None = None
    #: In AWS, an Amazon Bedrock guardrail as ``<id>:<version>`` (``HELIPORT_BEDROCK_GUARDRAIL``).
    bedrock_guardrail: str | None = None
    #: A safety check the caller asked for (moderation, LLM security) whose classifier cannot be
    #: reached refuses the request (503) unless this is on: then it passes, and the row says why.
    safety_fail_open: bool = False
    #: Seconds the AI gateway keeps a resolved prompt version in memory (``HELIPORT_PROMPT_CACHE_TTL``):
    #: an environment moved through the Prompts API reaches every instance within this long. 0: no cache.
    prompt_cache_ttl: float = 10.0
    #: In AWS, the queue of outbound messages (webhook deliveries, alert notifications) that the delivery
    #: function sends from outside the VPC (:mod:`heliport.outbox`); unset locally, where they are sent
    #: in process.
    outbox_queue_url: str | None = None
    #: Where people reach this deployment (``https://.../v1``): links in alert notifications point here.
    public_url: str | None = None
    #: The sender of alert e-mails: an Amazon SES verified identity in AWS, the From address locally.
    alert_email_from: str | None = None
    #: Locally, the SMTP server alert e-mails go through: ``smtp://[user:password@]host[:port]`` (STARTTLS
    #: when the server offers it) or ``smtps://...`` (TLS from the start).
    smtp_url: str | None = None
    #: Locally, seconds between two evaluations of the alerts by ``heliport serve``.
    alert_interval: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        overrides = {
            name[len(_PREFIX + "UPSTREAM_") :].lower(): value.rstrip("/")
            for name, value in env.items()
            if name.startswith(_PREFIX + "UPSTREAM_") and value
        }
        return cls(
            host=env.get(_PREFIX + "HOST", cls.host),
            port=_int(env, "PORT", cls.port),
            data_dir=Path(env.get(_PREFIX + "DATA_DIR", str(cls.data_dir))),
            upstream_overrides=overrides,
            target_hosts=_csv(env, "TARGET_HOSTS"),
            trusted_origins=frozenset(o.rstrip("/").lower() for o in _csv(env, "TRUSTED_ORIGINS")),
            timeouts=Timeouts(
                connect=_float(env, "CONNECT_TIMEOUT", Timeouts.connect),
                read=_float(env, "READ_TIMEOUT", Timeouts.read),
            ),
            auth_cache_ttl=_float(env, "AUTH_CACHE_TTL", cls.auth_cache_ttl),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            max_query_body_bytes=_int(env, "MAX_QUERY_BODY_BYTES", cls.max_query_body_bytes, minimum=1024),
            max_logged_body_bytes=_int(env, "MAX_LOGGED_BODY_BYTES", cls.max_logged_body_bytes),
            inline_body_bytes=_int(env, "INLINE_BODY_BYTES", cls.inline_body_bytes, minimum=0, maximum=1024 * 1024),
            max_json_depth=_int(
                env, "MAX_JSON_DEPTH", cls.max_json_depth, minimum=MIN_JSON_DEPTH, maximum=MAX_JSON_DEPTH
            ),
            # On everywhere by default (issue 18): after the last byte, kill -9 lost 0.37% of a burst's
            # rows locally, and Lambda may freeze the sandbox. Off trades that for one commit less of latency.
            log_before_last_byte=_bool(env, "LOG_BEFORE_LAST_BYTE", cls.log_before_last_byte),
            lambda_extension=_bool(env, "LAMBDA_EXTENSION", cls.lambda_extension),
            max_log_backlog=_int(env, "MAX_LOG_BACKLOG", cls.max_log_backlog, minimum=1),
            table_name=env.get(_PREFIX + "TABLE") or None,
            queue_url=env.get(_PREFIX + "QUEUE_URL") or None,
            bucket=env.get(_PREFIX + "BUCKET") or None,
            aws_region=env.get(_PREFIX + "AWS_REGION") or env.get("AWS_REGION") or None,
            aws_endpoint_url=env.get(_PREFIX + "AWS_ENDPOINT_URL") or None,
            database_url=env.get(_PREFIX + "DATABASE_URL") or None,
            database_secret_arn=env.get(_PREFIX + "DATABASE_SECRET_ARN") or None,
            database_host=env.get(_PREFIX + "DATABASE_HOST") or None,
            database_name=env.get(_PREFIX + "DATABASE_NAME") or None,
            database_port=_int(env, "DATABASE_PORT", cls.database_port, minimum=1),
            database_connect_timeout=_float(
                env, "DATABASE_CONNECT_TIMEOUT", cls.database_connect_timeout, positive=True
            ),
            body_url_secret=env.get(_PREFIX + "BODY_URL_SECRET", "").encode() or None,
            body_url_secret_arn=env.get(_PREFIX + "BODY_URL_SECRET_ARN") or None,
            realtime_log_interval=_float(env, "REALTIME_LOG_INTERVAL", cls.realtime_log_interval),
            realtime_idle_timeout=_float(env, "REALTIME_IDLE_TIMEOUT", cls.realtime_idle_timeout),
            prompt_guard_model=_pair(env, "PROMPT_GUARD_MODEL", "<provider>:<model>"),
            prompt_guard_threshold=_probability(env, "PROMPT_GUARD_THRESHOLD", cls.prompt_guard_threshold),
            llama_guard_model=_pair(env, "LLAMA_GUARD_MODEL", "<provider>:<model>"),
            bedrock_guardrail=_pair(env, "BEDROCK_GUARDRAIL", "<guardrail id>:<version>"),
            safety_fail_open=_bool(env, "SAFETY_FAIL_OPEN", cls.safety_fail_open),
            prompt_cache_ttl=_non_negative(env, "PROMPT_CACHE_TTL", cls.prompt_cache_ttl),
            outbox_queue_url=env.get(_PREFIX + "OUTBOX_QUEUE_URL") or None,
            public_url=(env.get(_PREFIX + "PUBLIC_URL") or "").rstrip("/") or None,
            alert_email_from=env.get(_PREFIX + "ALERT_EMAIL_FROM") or None,
            smtp_url=env.get(_PREFIX + "SMTP_URL") or None,
            alert_interval=_float(env, "ALERT_INTERVAL", cls.alert_interval, positive=True),
        )


def _non_negative(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not 0 <= value < math.inf:
        raise ConfigError(f"{_PREFIX}{name} must be a number of seconds, 0 or more, got {value:g}")
    return value


def _probability(env: Mapping[str, str], name: str, default: float) -> float:
    """A score threshold in (0, 1]: above 1 no score would ever reach it, and the check would pass everything."""
    value = _float(env, name, default, positive=True)
    if value > 1:
        raise ConfigError(f"{_PREFIX}{name} must be a probability in (0, 1], got {value:g}")
    return value


def _pair(env: Mapping[str, str], name: str, shape: str) -> str | None:
    """A ``<left>:<right>`` setting (both parts non-empty), or None when unset."""
    raw = env.get(_PREFIX + name, "").strip()
    if not raw:
        return None
    left, sep, right = raw.partition(":")
    if not sep or not left.strip() or not right.strip():
        raise ConfigError(f"{_PREFIX}{name} must be {shape}, got {raw!r}")
    return raw


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in env.get(_PREFIX + name, "").split(",") if p.strip())


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = env.get(_PREFIX + name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{_PREFIX}{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_PREFIX}{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{_PREFIX}{name} must be at most {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, positive: bool = False) -> float:
    raw = env.get(_PREFIX + name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{_PREFIX}{name} must be a number, got {raw!r}") from None
    # The chained comparison also refuses nan, which no comparison accepts.
    if positive and not 0 < value < math.inf:
        raise ConfigError(f"{_PREFIX}{name} must be a positive number, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(_PREFIX + name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ConfigError(f"{_PREFIX}{name} must be true or false, got {raw!r}")
