# heliport as a long-running server: the realtime WebSocket relay (/v1/gateway/oai/realtime), which
# Lambda cannot host, plus every HTTP route of the same app. infra/terraform/modules/realtime runs it
# on ECS Fargate. With HELIPORT_TABLE / HELIPORT_QUEUE_URL / HELIPORT_BUCKET set it uses the AWS
# adapters (keys from DynamoDB, log records to SQS for the consumer function); see
# docs/architecture.md#the-realtime-relay-v1gatewayoairealtime.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared/heliport ./shared/heliport
RUN python -m venv /opt/heliport && /opt/heliport/bin/pip install ".[aws]"

FROM python:3.12-slim
ENV PATH=/opt/heliport/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HELIPORT_DATA_DIR=/tmp/heliport \
    UVICORN_HOST=0.0.0.0 \
    UVICORN_PORT=8585
COPY --from=build /opt/heliport /opt/heliport
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin heliport
USER 10001
EXPOSE 8585
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthcheck' % os.environ.get('UVICORN_PORT', '8585'), timeout=2)"]
# --ws websockets: its implementation supports the ASGI denial response, so a bad heliport key is a
# 401 before the upgrade. The ALB terminates TLS and sets X-Forwarded-*.
CMD ["uvicorn", "--factory", "heliport.app:create_app", "--ws", "websockets", "--no-server-header", \
     "--proxy-headers", "--forwarded-allow-ips", "*", "--timeout-graceful-shutdown", "290"]
