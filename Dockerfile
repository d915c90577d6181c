FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
COPY seeds ./seeds
# gcc builds the optional C accelerator of story fingerprints (monitor/_fastprint.c); without it
# the pure-Python path runs, slower. It is removed again in the same layer.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app monitor && mkdir -p /app/data \
    && chown monitor /app/data
USER monitor
VOLUME ["/app/data"]
# /healthz and /metrics, when the config has `http: {listen: ...}` or `run --listen` is given
EXPOSE 9108
CMD ["monitor", "-c", "/config/monitor.yaml", "run", "--listen", "0.0.0.0:9108"]
