"""The pre-forward stage as heliport configures it: which checks, in which order."""

from __future__ import annotations

from heliport.exchange import RequestStep
from heliport.steps import StepServices
from heliport.steps.llm_security import LlmSecurity
from heliport.steps.moderation import Moderation
from heliport.steps.prompts import PromptCompilation
from heliport.steps.token_limit import TokenLimit

__all__ = ["default_steps"]


def default_steps(services: StepServices) -> tuple[RequestStep, ...]:
    """The checks every heliport runs when a request asks for them. Prompt compilation comes first
    (on the AI gateway, a body with ``prompt_id`` becomes the saved prompt), so the safety checks
    screen the compiled prompt, before the token-limit handling trims or re-routes it."""
    return (
        PromptCompilation(services),
        Moderation(services),
        LlmSecurity(services),
        TokenLimit(services, registry=services.registry),
    )
