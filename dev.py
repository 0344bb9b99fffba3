#!/usr/bin/env python3
"""One-command bootstrap: ``python3 dev.py serve`` runs heliport, ``python3 dev.py test`` runs the tests.

Needs only Python 3.11+. It makes ``.venv`` on first use, reinstalls the project there whenever
``pyproject.toml`` changes, then runs the command inside it. Anything after the command is passed on
(``python3 dev.py test -k streaming``, ``python3 dev.py heliport keys list``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".heliport-installed"
# checkov pins its own HCL parser, which clashes with the project's: it gets a venv of its own.
CHECKOV_VENV = ROOT / ".venv-checkov"
CHECKOV_REQUIREMENTS = ROOT / "infra" / "requirements-checkov.txt"
# The AWS SAM CLI (`sam validate` in tests/infra) pins its own boto3, cfn-lint and SAM translator: a venv
# of its own as well.
SAM_VENV = ROOT / ".venv-sam"
SAM_REQUIREMENT = "aws-sam-cli>=1.170,<2"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"heliport needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("dev.py: installing heliport and its test dependencies into .venv", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def ensure_tool_venv(venv_dir: Path, name: str, requirements: list[str], wanted: str) -> Path:
    """A venv of its own for one tool; reinstalled when ``wanted`` (a hash of its requirements) changes."""
    bin_dir = venv_dir / ("Scripts" if os.name == "nt" else "bin")
    stamp = venv_dir / ".installed"
    if not (bin_dir / "python").exists():
        print(f"dev.py: creating {venv_dir.name}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(venv_dir)
        # Ignored by git wherever it lives, as Python 3.13's venv does itself.
        (venv_dir / ".gitignore").write_text("*\n")
    if not stamp.exists() or stamp.read_text() != wanted:
        print(f"dev.py: installing {name} into {venv_dir.name}", file=sys.stderr)
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, *requirements], check=True)
        stamp.write_text(wanted)
    return bin_dir / name


def ensure_checkov() -> Path:
    """The checkov the infrastructure tests run, installed from ``infra/requirements-checkov.txt``."""
    wanted = hashlib.sha256(CHECKOV_REQUIREMENTS.read_bytes()).hexdigest()
    return ensure_tool_venv(CHECKOV_VENV, "checkov", ["-r", str(CHECKOV_REQUIREMENTS)], wanted)


def ensure_sam() -> Path:
    """The AWS SAM CLI whose ``sam validate`` the template tests run (offline, no credentials needed)."""
    wanted = hashlib.sha256(SAM_REQUIREMENT.encode()).hexdigest()
    return ensure_tool_venv(SAM_VENV, "sam", [SAM_REQUIREMENT], wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "heliport", "bench"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        args = [str(BIN / "heliport"), "serve", *rest]
    elif command == "heliport":
        args = [str(BIN / "heliport"), *rest]
    elif command == "bench":
        args = [str(BIN / "python"), str(ROOT / "bench" / "suite.py"), *rest]
    else:
        os.environ.setdefault("HELIPORT_CHECKOV", str(ensure_checkov()))
        os.environ.setdefault("HELIPORT_SAM", str(ensure_sam()))
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    os.chdir(ROOT)
    return subprocess.call(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
