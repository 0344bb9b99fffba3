"""The functions as AWS builds and runs them, on this machine and without Docker.

* **Build**: ``sam build`` (no container) with a real Python 3.13 on ``PATH``, as a user runs it: the
  arm64 artifact that ``sam deploy`` would upload, and a twin of it for this machine's architecture
  (the same template, requirements and builder, only ``Architectures`` changed) whose compiled
  wheels can load here.
* **Run**: each process sees what Lambda gives a function and nothing of the test's own environment:
  ``env -i`` with Lambda's variables and the template's ``Environment``, the function's directory as
  ``LAMBDA_TASK_ROOT``, and the layer at ``/opt/python`` through a bind mount in a private mount
  namespace (root only; the machine's ``/opt`` is untouched). Zip handlers run under the Lambda
  Runtime Interface Emulator that ships in the ``aws-sam-cli`` package with the official runtime
  interface client (``awslambdaric``) as the runtime; the proxy runs its ``run.sh`` exactly as the
  Lambda Web Adapter's ``/opt/bootstrap`` does (``exec $LAMBDA_TASK_ROOT/$_HANDLER``).

Python 3.13, root and ``unshare`` are facts of this machine kind; where one is missing the tests skip
with the reason, except under ``CI=true``, where they fail: CI must never pass without running them.
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
# The runtime interface client of the managed Python runtime, for this machine's architecture.
AWSLAMBDARIC = "awslambdaric==4.2.2"
FUNCTIONS = ("ProxyFunction", "QueryApiFunction", "LoggerFunction", "DeliveryFunction", "AlertsFunction")


def unavailable(reason: str) -> None:
    """Skip loudly, or fail under CI: a missing tool must never turn these checks green."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"LAMBDA EMULATION NOT RUN in CI: {reason}")
    pytest.skip(f"LAMBDA EMULATION NOT RUN: {reason}")


def host_architecture() -> str:
    """Lambda's name for this machine's architecture."""
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def _python_version(candidate: str) -> str | None:
    try:
        result = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_python313() -> Path | None:
    """A real Python 3.13 interpreter (never a pyenv shim, which picks a version by its own rules)."""
    candidates: list[str] = []
    if os.environ.get("HELIPORT_PYTHON313"):
        candidates.append(os.environ["HELIPORT_PYTHON313"])
    found = shutil.which("python3.13")
    if found:
        candidates.append(found)
    pyenv_roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        result = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
        pyenv_roots.insert(0, result.stdout.strip())
    for pyenv_root in filter(None, pyenv_roots):
        candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"), reverse=True)
    candidates += ["/usr/local/bin/python3.13", "/usr/bin/python3.13"]
    for candidate in candidates:
        if "/shims/" in candidate or not Path(candidate).is_file():
            continue
        if _python_version(candidate) == "3.13":
            return Path(candidate).resolve()
    return None


def rie_binary(sam: str) -> Path:
    """The Runtime Interface Emulator inside the SAM CLI's own package (``samcli/local/rapid``)."""
    sam_python = Path(sam).read_text().splitlines()[0].removeprefix("#!").strip()
    result = subprocess.run(
        [sam_python, "-c", "import os, samcli; print(os.path.dirname(samcli.__file__))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    binary = Path(result.stdout.strip()) / "local" / "rapid" / f"aws-lambda-rie-{host_architecture()}"
    if not binary.is_file():
        unavailable(f"the SAM CLI at {sam} ships no {binary.name}")
    return binary


def check_namespaces() -> None:
    """Root, and a private mount namespace with a bind mount over /opt, or the emulation cannot be faithful."""
    if os.geteuid() != 0:
        unavailable("binding the layer at /opt needs root (a private mount namespace)")
    if shutil.which("unshare") is None:
        unavailable("unshare (util-linux) is not installed")
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount --bind /tmp /opt"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        unavailable(f"no private mount namespace here: {probe.stderr.strip()}")


@dataclass(frozen=True)
class LambdaBuild:
    """``sam build`` output for AWS (arm64) and its twin for this machine, plus the runtime to run it."""

    artifact: Path  # the arm64 build directory, as `sam deploy` uploads it
    twin: Path  # the same template built for this machine's architecture
    runtime_dir: Path  # LAMBDA_RUNTIME_DIR: awslambdaric for Python 3.13 on this machine
    python: Path  # the real Python 3.13 (Lambda's /var/lang/bin/python)
    rie: Path  # aws-lambda-rie for this machine's architecture
    build_seconds: float

    def function_dir(self, function: str) -> Path:
        return self.twin / function

    def layer(self) -> Path:
        """What Lambda extracts to /opt for every function: the twin's heliport layer."""
        return self.twin / "HeliportLayer"


def _sam_build(sam: str, bin_dir: Path, template: Path, build_dir: Path, workdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "SAM_CLI_TELEMETRY": "0"}
    command = [sam, "build", "--template-file", str(template), "--build-dir", str(build_dir), "--base-dir", str(ROOT)]
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def build(sam: str, workdir: Path) -> LambdaBuild:
    """Both ``sam build`` runs (in parallel) and the runtime interface client, under ``workdir``."""
    python = find_python313()
    if python is None:
        unavailable("no Python 3.13 interpreter (what the functions run) on this machine")
    assert python is not None
    rie = rie_binary(sam)
    # sam finds the runtime's interpreter by its name on PATH: offer exactly this one.
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    for name in ("python3.13", "python3", "python"):
        (bin_dir / name).symlink_to(python)

    started = time.monotonic()
    builds = {"artifact": (TEMPLATE, workdir / "build")}
    if host_architecture() != "arm64":
        twin_template = workdir / "template-twin.yaml"
        twin_template.write_text(TEMPLATE.read_text().replace("arm64", host_architecture()))
        builds["twin"] = (twin_template, workdir / "twin")
    runtime_dir = workdir / "runtime"
    pip_install = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        pip = pool.submit(
            subprocess.run,
            [*pip_install, "--target", str(runtime_dir), AWSLAMBDARIC],
            capture_output=True,
            text=True,
            timeout=600,
        )
        processes = {name: _sam_build(sam, bin_dir, *paths, workdir) for name, paths in builds.items()}
        for name, process in processes.items():
            output, _ = process.communicate(timeout=900)
            assert process.returncode == 0, f"sam build ({name}) failed:\n{output[-6000:]}"
        installed = pip.result()
        assert installed.returncode == 0, f"pip install {AWSLAMBDARIC} failed:\n{installed.stderr[-4000:]}"
    artifact = builds["artifact"][1]
    twin = builds["twin"][1] if "twin" in builds else artifact
    return LambdaBuild(artifact, twin, runtime_dir, python, rie, time.monotonic() - started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def resolve(value: Any, refs: Mapping[str, str]) -> str | None:
    """One template ``Environment`` value with its ``!Ref``s and ``!If``s resolved for this emulation
    (``None`` where the template leaves the variable out)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        if name not in refs:
            raise KeyError(f"the emulation has no value for !Ref {name}")
        return refs[name]
    if isinstance(value, dict) and "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        return resolve(when_true if refs.get(f"condition:{condition}") == "true" else when_false, refs)
    raise ValueError(f"unsupported template value {value!r}")


def function_environment(template: Mapping[str, Any], function: str, refs: Mapping[str, str]) -> dict[str, str]:
    """The variables the template gives ``function``, resolved against the emulated resources."""
    variables = template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})
    resolved = {name: resolve(value, refs) for name, value in variables.items()}
    return {name: value for name, value in resolved.items() if value is not None}


class Sandbox:
    """Processes started as Lambda starts a function's runtime: ``env -i``, the layer at /opt."""

    def __init__(self, lambda_build: LambdaBuild, function: str, workdir: Path, handler: str) -> None:
        self.build = lambda_build
        self.function = function
        self.task_root = lambda_build.function_dir(function)
        # /opt as Lambda lays it out: the layer's contents, plus (for the proxy) the adapter's bootstrap.
        self.opt = workdir / f"opt-{function}"
        self.opt.mkdir()
        (self.opt / "python").symlink_to(lambda_build.layer() / "python")
        # What the Web Adapter layer's /opt/bootstrap does, as AWS_LAMBDA_EXEC_WRAPPER: replace the
        # runtime's bootstrap with the function's handler script.
        bootstrap = self.opt / "bootstrap"
        bootstrap.write_text('#!/bin/bash\nexec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"\n')
        bootstrap.chmod(0o755)
        self.lang_bin = workdir / f"lang-{function}"
        self.lang_bin.mkdir()
        for name in ("python", "python3", "python3.13"):
            (self.lang_bin / name).symlink_to(lambda_build.python)
        self.handler = handler

    def base_environment(self) -> dict[str, str]:
        """What the Lambda service sets for every python3.13 function (less what only AWS can give)."""
        return {
            "PATH": f"{self.lang_bin}:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(self.build.runtime_dir),
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": f"heliport-{self.function}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        }

    def start(self, argv: Sequence[str], environment: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
        env = {**self.base_environment(), **environment}
        assignments = [f"{name}={value}" for name, value in env.items()]
        # The bind mount exists only in the new namespace, and dies with it.
        script = 'opt="$1"; shift; mount --bind "$opt" /opt && exec env -i "$@"'
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(self.opt)]
        return subprocess.Popen(
            [*command, *assignments, *argv],
            cwd=self.task_root,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a sandboxed process and everything it started (the emulator's runtime, uvicorn)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, 15)
            process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, 9)
            process.wait(10)
