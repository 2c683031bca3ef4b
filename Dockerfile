# syntax=docker/dockerfile:1
# Multi-stage: build a virtualenv with the gateway in it, then copy only that into a slim runtime.
# Configuration comes only from GATEWAY_* environment variables (see README.md).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY deploy/install.sh /usr/local/bin/install-gateway
RUN install-gateway /src /opt/venv

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /data gateway
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_STORAGE_URL=file:///data/blobs \
    GATEWAY_CATALOG_URL=sqlite:////data/catalog.db
USER gateway
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["gateway", "healthcheck"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
