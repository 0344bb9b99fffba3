#!/bin/sh
# Handler of the proxy function. The Lambda Web Adapter layer (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# execs this script in place of the Python runtime's own bootstrap, then proxies invocations to the port
# below. That bootstrap is what would have put the layers (/opt/python) on sys.path, so this script
# does it: the task root first, then the heliport layer, then the runtime's own directory, as Lambda
# orders them. Logs go to stdout -> CloudWatch.
export PYTHONPATH="$LAMBDA_TASK_ROOT:/opt/python${LAMBDA_RUNTIME_DIR:+:$LAMBDA_RUNTIME_DIR}${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn app:app \
  --host 127.0.0.1 --port "${PORT:-8080}" \
  --http httptools --loop uvloop --lifespan on \
  --no-access-log --no-server-header --log-level warning
