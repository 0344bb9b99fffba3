#!/bin/sh
# Handler of the proxy function. The Lambda Web Adapter layer (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# runs this script, then proxies invocations to the port below. Logs go to stdout -> CloudWatch.
export PYTHONPATH="$LAMBDA_TASK_ROOT:${PYTHONPATH:-}"
exec python -m uvicorn app:app \
  --host 127.0.0.1 --port "${PORT:-8080}" \
  --http httptools --loop uvloop --lifespan on \
  --no-access-log --no-server-header --log-level warning
