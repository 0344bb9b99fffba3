"""A mock LLM provider (OpenAI Chat/Responses, Anthropic Messages) for end-to-end tests and benchmarks."""

from __future__ import annotations

from .app import create_app
from .recorder import RecordedRequest, Recorder
from .server import MockProvider

__all__ = ["MockProvider", "RecordedRequest", "Recorder", "create_app"]
