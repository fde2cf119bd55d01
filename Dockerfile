# The dos-adapters image: one image, one container per adapter (docker-compose.fiware.yml runs
# `dos-adapters run --adapter <name>`; `dos-adapters provision` runs from it too).
#
#   docker build -t dos-adapters:0.1.0 .
#   docker run --rm dos-adapters:0.1.0 list
#
# State (the outbox that keeps every entity until the broker confirmed it, the dead-letter file)
# lives in /var/lib/dos-adapters: mount a volume there. /health on DOS_METRICS_PORT is the health check.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY adapters ./adapters
COPY datamodels ./datamodels
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/dos-adapters --create-home \
       --shell /usr/sbin/nologin dos

USER dos
WORKDIR /var/lib/dos-adapters

# Metrics and /health on this port (the [metrics] port of the configuration); JSON log lines.
ENV DOS_METRICS_PORT=9100 \
    DOS_LOG_FORMAT=json \
    DOS_OUTBOX_PATH=/var/lib/dos-adapters/outbox.sqlite \
    DOS_DEAD_LETTER_PATH=/var/lib/dos-adapters/dead-letter.ndjson \
    DOS_OUTPUT_PATH=/var/lib/dos-adapters/entities.ndjson
EXPOSE 9100
VOLUME ["/var/lib/dos-adapters"]

# 200 while every poll succeeded within three intervals and nothing is stuck in the outbox; else 503.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('DOS_METRICS_PORT', '9100'), timeout=4)"]

ENTRYPOINT ["dos-adapters"]
CMD ["run"]
