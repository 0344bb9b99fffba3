"""``Helicone-LLM-Security-Enabled`` / ``-Advanced``: screen each user message before the model sees it.

Two tiers, as Helicone has them:

* **prompt injection** (``Helicone-LLM-Security-Enabled: true``): every user message is scored for
  prompt attacks and jailbreaks;
* **safety** (``Helicone-LLM-Security-Advanced: true``): every user message is also judged against
  the 14 hazard categories of Llama Guard. Advanced alone turns on both tiers: Helicone documents it
  as a deeper analysis *added* to the base screening, and a caller asking for more must not get less.

Which classifier serves a tier is the operator's choice (:mod:`heliport.steps.classifiers`): the model
setting of the tier wins (``HELIPORT_PROMPT_GUARD_MODEL``, ``HELIPORT_LLAMA_GUARD_MODEL``, each
``<provider>:<model>`` over the AI gateway's provider account of that provider), and an Amazon Bedrock
guardrail (``HELIPORT_BEDROCK_GUARDRAIL``) serves the tiers that have none, with one call per message
for both. A tier asked for with no classifier is an explicit 400 naming the settings, never a pass.

Every (message, classifier) pair is called concurrently. A threat anywhere answers Helicone's 400
``PROMPT_THREAT_DETECTED`` and the model is never called. A classifier that gives no verdict
(unreachable, 429, 5xx, a timeout, an answer it cannot read) refuses the request with a 503, since the
caller asked for a check that did not happen, unless ``HELIPORT_SAFETY_FAIL_OPEN`` is on: then the
request goes on, and the row's errors and facts say which check did not run and why. A threat found
by one classifier blocks even when another failed. What was found goes on the log record as the
``llm_security`` fact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from heliport.config import ConfigError, Settings
from heliport.errors import HeliportError, RequestError
from heliport.exchange import Answer, Exchange, StepResult
from heliport.proxy.transport import UpstreamTransport
from heliport.steps.classifiers import (
    BedrockGuardrail,
    Classifier,
    ClassifierError,
    LlamaGuard,
    PromptGuard,
    Send,
    Tier,
    Verdict,
)
from heliport.steps.messages import UserMessage, decode_object, user_messages

if TYPE_CHECKING:
    from heliport.gateway.providers import Accounts

__all__ = ["THREAT_CODE", "LlmSecurity", "SecurityNotConfiguredError", "SecurityUnavailableError"]

logger = logging.getLogger("heliport.steps")

THREAT_CODE = "PROMPT_THREAT_DETECTED"
THREAT_MESSAGE = "Prompt threat detected. Your request cannot be processed."
_ENABLED = "Helicone-LLM-Security-Enabled"
_ADVANCED = "Helicone-LLM-Security-Advanced"
#: Classifier calls of one request in flight at once (messages x classifiers; Prompt Guard segments
#: are bounded again inside).
_CONCURRENCY = 8


class Services(Protocol):
    """What the step calls out with: :class:`heliport.steps.StepServices`, named by its shape so that this
    module does not import the package that imports it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def transport(self) -> Callable[[], UpstreamTransport]: ...

    @property
    def accounts(self) -> Callable[[], Awaitable[Accounts]]: ...


class SecurityNotConfiguredError(RequestError):
    """The request asked for a check this deployment has no classifier for (the message names the settings)."""

    code = "llm_security_not_configured"


class SecurityUnavailableError(HeliportError):
    """A check the caller asked for could not run, and the deployment fails closed."""

    status = 503
    code = "llm_security_unavailable"


class LlmSecurity:
    """The pre-forward step; builds its classifiers on first use (the provider accounts load lazily)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._settings = services.settings

    def wanted(self, exchange: Exchange, /) -> bool:
        options = exchange.options
        return options.llm_security_enabled or options.llm_security_advanced

    async def __call__(self, exchange: Exchange, /) -> StepResult:
        options = exchange.options
        advanced = options.llm_security_advanced
        tiers: tuple[Tier, ...] = ("prompt_injection", "safety") if advanced else ("prompt_injection",)
        try:
            classifiers = await self._classifiers(tiers, _ADVANCED if advanced else _ENABLED)
        except SecurityUnavailableError as exc:  # the provider accounts could not be read: an outage
            if not self._settings.safety_fail_open:
                raise
            exchange.errors.append(f"LLM security check did not run, proceeded (HELIPORT_SAFETY_FAIL_OPEN): {exc}")
            return StepResult(facts={"llm_security": {"threat": False, "tiers": list(tiers), "failed_open": str(exc)}})
        parsed = decode_object(exchange.body)
        messages = user_messages(parsed) if parsed is not None else []
        started = time.perf_counter()
        if not messages:
            why = "the body has no user message to screen" if parsed is not None else "the body is not a JSON object"
            return StepResult(
                facts={"llm_security": {"threat": False, "tiers": list(tiers), "messages": [], "skipped": why}}
            )

        send: Send = self._services.transport().send
        limit = asyncio.Semaphore(_CONCURRENCY)

        async def run(classifier: Classifier, message: UserMessage) -> list[Verdict] | ClassifierError:
            async with limit:
                try:
                    return await classifier.screen(message, send)
                except ClassifierError as exc:
                    return exc
                except Exception as exc:  # a bug here must not be a 500: it is a check that did not run
                    logger.exception("LLM security classifier %s failed", classifier.name)
                    return ClassifierError(f"{classifier.name} ({classifier.model}) failed: {type(exc).__name__}")

        pairs = [(message, classifier) for message in messages for classifier in classifiers]
        outcomes = await asyncio.gather(*(run(classifier, message) for message, classifier in pairs))
        return self._judge(exchange, tiers, messages, pairs, outcomes, (time.perf_counter() - started) * 1000)

    def _judge(
        self,
        exchange: Exchange,
        tiers: tuple[Tier, ...],
        messages: Sequence[UserMessage],
        pairs: Sequence[tuple[UserMessage, Classifier]],
        outcomes: Sequence[list[Verdict] | ClassifierError],
        latency_ms: float,
    ) -> StepResult:
        by_message: dict[str, list[dict[str, object]]] = {message.path: [] for message in messages}
        threats: list[str] = []
        failures: list[str] = []
        for (message, classifier), outcome in zip(pairs, outcomes, strict=True):
            checks = by_message[message.path]
            if isinstance(outcome, ClassifierError):
                failures.append(f"{message.path}: {outcome}")
                for tier in classifier.tiers:
                    checks.append(
                        {
                            "tier": tier,
                            "classifier": classifier.name,
                            "model": classifier.model,
                            "verdict": "error",
                            "error": str(outcome),
                        }
                    )
                continue
            for verdict in outcome:
                checks.append(verdict.fact())
                if verdict.threat:
                    threats.append(f"{message.path}: {verdict.describe()}")
        fact: dict[str, object] = {
            "threat": bool(threats),
            "tiers": list(tiers),
            "messages": [
                {
                    "path": path,
                    "verdict": _message_verdict(checks),
                    "checks": checks,
                }
                for path, checks in by_message.items()
            ],
            "latency_ms": round(latency_ms, 2),
        }
        if threats:
            body = {
                "success": False,
                "error": {"code": THREAT_CODE, "message": THREAT_MESSAGE, "details": "; ".join(threats)},
            }
            return StepResult(answer=Answer(400, body), facts={"llm_security": fact})
        if failures:
            reason = "; ".join(failures)
            if not self._settings.safety_fail_open:
                return StepResult(
                    answer=SecurityUnavailableError(
                        f"The LLM security check you asked for ({_ENABLED} / {_ADVANCED}) could not run, so the "
                        f"request was not forwarded: {reason}"
                    ),
                    facts={"llm_security": fact},
                )
            fact["failed_open"] = reason
            exchange.errors.append(f"LLM security check did not run, proceeded (HELIPORT_SAFETY_FAIL_OPEN): {reason}")
        return StepResult(facts={"llm_security": fact})

    async def _classifiers(self, tiers: tuple[Tier, ...], header: str) -> list[Classifier]:
        """The classifiers serving ``tiers``: each tier's model setting, else the Bedrock guardrail."""
        settings = self._settings
        models = {"prompt_injection": settings.prompt_guard_model, "safety": settings.llama_guard_model}
        names = {"prompt_injection": "HELIPORT_PROMPT_GUARD_MODEL", "safety": "HELIPORT_LLAMA_GUARD_MODEL"}
        missing = [tier for tier in tiers if not models[tier] and not settings.bedrock_guardrail]
        if missing:
            wanted = " and ".join(f"{names[tier]} (<provider>:<model>)" for tier in missing)
            raise SecurityNotConfiguredError(
                f"{header} asks for LLM security, but this heliport has no classifier for it: configure "
                f"{wanted}, or HELIPORT_BEDROCK_GUARDRAIL (<guardrail id>:<version>).",
                param=header,
            )
        classifiers: list[Classifier] = []
        if "prompt_injection" in tiers and settings.prompt_guard_model:
            url, key = await self._account(settings.prompt_guard_model, names["prompt_injection"], header)
            classifiers.append(PromptGuard(settings.prompt_guard_model, url, key, settings.prompt_guard_threshold))
        if "safety" in tiers and settings.llama_guard_model:
            url, key = await self._account(settings.llama_guard_model, names["safety"], header)
            classifiers.append(LlamaGuard(settings.llama_guard_model, url, key))
        guarded: tuple[Tier, ...] = tuple(tier for tier in tiers if not models[tier])
        if guarded and settings.bedrock_guardrail:
            classifiers.append(await self._guardrail(settings.bedrock_guardrail, guarded))
        return classifiers

    async def _account(self, setting: str, name: str, header: str) -> tuple[str, str]:
        """The chat URL and key of the provider account a ``<provider>:<model>`` setting names."""
        provider = setting.partition(":")[0].strip().lower()
        try:
            accounts = await self._services.accounts()
        except ConfigError as exc:
            raise SecurityUnavailableError(f"The provider accounts could not be read for {name}: {exc}") from None
        if not accounts.available(provider):
            raise SecurityNotConfiguredError(
                f"{header} asks for LLM security, but {name} names provider {provider!r}, which has no account "
                f"on this heliport: give it that provider's API key as for the AI gateway (for Groq, GROQ_API_KEY).",
                param=header,
            )
        account = accounts.get(provider)
        if account.family != "openai" or not account.api_key:
            raise SecurityNotConfiguredError(
                f"{header} asks for LLM security, but {name} names provider {provider!r}, which is not an "
                "OpenAI-compatible chat completions host (use groq, or any such host via HELIPORT_UPSTREAM_<SLUG>).",
                param=header,
            )
        return account.base_url + account.chat_path, account.api_key

    async def _guardrail(self, setting: str, tiers: tuple[Tier, ...]) -> BedrockGuardrail:
        """``<id>:<version>`` (the id may be a guardrail ARN, itself full of colons) as a classifier."""
        from heliport.gateway.adapters import bedrock_credentials

        guardrail_id, _, version = setting.strip().rpartition(":")
        # The guardrail lives where the function runs (the template creates it there, and grants it
        # there); without an AWS region (local runs) the Bedrock provider's region is the next guess.
        region = self._settings.aws_region or ""
        if not region:
            try:
                accounts = await self._services.accounts()
                if accounts.available("bedrock"):
                    region = accounts.get("bedrock").region or ""
            except ConfigError:
                pass  # no region then: the call says so, as a check that could not run
        return BedrockGuardrail(
            guardrail_id=guardrail_id,
            version=version,
            region=region,
            endpoint=self._settings.upstream_overrides.get("bedrock") or None,
            credentials=bedrock_credentials,
            tiers=tiers,
        )


def _message_verdict(checks: Sequence[dict[str, object]]) -> str:
    verdicts = {check.get("verdict") for check in checks}
    if "threat" in verdicts:
        return "threat"
    return "unchecked" if "error" in verdicts else "safe"
