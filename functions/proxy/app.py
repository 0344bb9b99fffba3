"""Lambda entry of the proxy: the heliport ASGI app, served by uvicorn under the Lambda Web Adapter.

``run.sh`` is the function's handler; the adapter (a layer, in ``response_stream`` mode) starts it,
waits for ``/healthcheck``, and relays each invocation to uvicorn over loopback as plain HTTP, so
responses stream to API Gateway as they are produced. The app reads its resources (table, queue)
from the environment the SAM template sets. With ``HELIPORT_LAMBDA_EXTENSION`` (on in the template) it
also registers as an internal Lambda extension at start-up, so log records go out after the last byte
while Lambda holds the freeze for them (:mod:`heliport.lambda_extension`).
"""

from __future__ import annotations

from heliport.app import create_app
from heliport.heap import tune_for_serving
from heliport.lambda_extension import with_lambda_extension

app = with_lambda_extension(create_app())
tune_for_serving()
