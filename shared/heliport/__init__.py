"""heliport: a Helicone-compatible LLM gateway for AWS Lambda and laptops."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
