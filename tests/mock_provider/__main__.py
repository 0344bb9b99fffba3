"""Run the mock provider standalone for load benchmarks.

    python -m tests.mock_provider --port 9100 [--host 127.0.0.1]

Requests are not recorded here (memory would grow without bound under load)
and access logging is off, because per-request logging would dominate the
cost of serving precompiled fixture bytes.
"""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app, install_log_filter
from .recorder import Recorder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.mock_provider", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args(argv)

    config = uvicorn.Config(
        create_app(Recorder(record_requests=False)),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )
    server = uvicorn.Server(config)
    install_log_filter()  # after Config, which (re)configures logging
    server.run()


if __name__ == "__main__":
    main()
