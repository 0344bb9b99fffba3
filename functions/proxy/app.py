"""Lambda entry of the proxy: the heliport ASGI app, served by uvicorn under the Lambda Web Adapter.

``run.sh`` is the function's handler; the adapter (a layer, in ``response_stream`` mode) starts it,
waits for ``/healthcheck``, and relays each invocation to uvicorn over loopback as plain HTTP, so
responses stream to API Gateway as they are produced. The app reads its resources (table, queue)
from the environment the SAM template sets.
"""

from __future__ import annotations

from heliport.app import create_app
from heliport.heap import tune_for_serving

app = create_app()
tune_for_serving()
