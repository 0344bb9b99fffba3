"""The peer gateway: the LiteLLM proxy, in a venv of its own, pointed at the same mock provider.

``bench/suite.py`` installs it (``bench/requirements-litellm.txt`` into ``.venv-litellm``, once per
change of that file) and starts it on 127.0.0.1 with a config this module writes. LiteLLM is run as
its docs describe a production proxy without a database: one master key (so it authenticates every
request, as heliport does), its bundled cost map (no fetch at start), telemetry off, one worker,
and no access log (heliport runs without one too: a log line per request costs both the same). Two
model names route to the mock: the plain
one the load uses, and one whose upstream calls carry ``x-mock-delay-ms`` for the TTFT phase
(LiteLLM does not forward a client's own headers upstream, so the delay is set in its config).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-litellm"
REQUIREMENTS = ROOT / "bench" / "requirements-litellm.txt"
MODEL = "gpt-4o-mini"
#: The model name whose upstream calls the mock answers after a delay (``x-mock-delay-ms``).
DELAYED_MODEL = "gpt-4o-mini-delayed"


def ensure_installed() -> Path:
    """The ``litellm`` command of ``.venv-litellm``, installing it there first if needed."""
    sys.path.insert(0, str(ROOT))
    from dev import ensure_tool_venv  # the project's own venv-per-tool helper

    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return ensure_tool_venv(VENV, "litellm", ["-r", str(REQUIREMENTS)], wanted)


def version() -> str:
    line = next(line for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#"))
    return line.strip()


def write_config(path: Path, mock_url: str, delay_ms: int) -> None:
    """A LiteLLM proxy config (JSON is YAML) routing both model names to the mock's OpenAI API."""

    def model(name: str, extra_headers: dict[str, str] | None = None) -> dict[str, object]:
        params: dict[str, object] = {
            "model": f"openai/{MODEL}",
            "api_base": f"{mock_url}/v1",
            "api_key": "sk-bench-upstream-key",
        }
        if extra_headers:
            params["extra_headers"] = extra_headers
        return {"model_name": name, "litellm_params": params}

    config = {
        "model_list": [model(MODEL), model(DELAYED_MODEL, {"x-mock-delay-ms": str(delay_ms)})],
        "litellm_settings": {"telemetry": False, "drop_params": False},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


#: uvicorn's default logging minus the access log (``--log_config``; JSON, which uvicorn reads).
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"uvicorn.access": {"level": "WARNING", "propagate": False}},
}


def argv(litellm: Path, config: Path, host: str, port: int) -> list[str]:
    log_config = config.with_name("litellm-logging.json")
    log_config.write_text(json.dumps(LOG_CONFIG))
    return [
        str(litellm),
        *("--config", str(config), "--host", host, "--port", str(port)),
        *("--num_workers", "1", "--log_config", str(log_config)),
    ]


def env(base: dict[str, str]) -> tuple[dict[str, str], str]:
    """LiteLLM's environment and the master key its clients send."""
    key = f"sk-litellm-bench-{secrets.token_hex(24)}"
    extra = {
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MODE": "PRODUCTION",
        "LITELLM_LOG": "ERROR",
    }
    return {**base, **extra}, key
