FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY seeds ./seeds
RUN pip install --no-cache-dir . && useradd --system --home /app monitor && mkdir -p /app/data \
    && chown monitor /app/data
USER monitor
VOLUME ["/app/data"]
# /healthz and /metrics, when the config has `http: {listen: ...}` or `run --listen` is given
EXPOSE 9108
CMD ["monitor", "-c", "/config/monitor.yaml", "run", "--listen", "0.0.0.0:9108"]
