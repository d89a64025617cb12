# The hub's image, for docker-compose.yml (not used on machines without Docker).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md hub.py ./
COPY connectors connectors
COPY schemas schemas
COPY router router
COPY streaming streaming
COPY config config
COPY demo demo
COPY journey journey
COPY simulator simulator
# the confluent extra lets kafka.client: confluent-kafka be chosen in hub.yaml without a rebuild
RUN pip install --no-cache-dir ".[confluent]" && useradd --system hub
USER hub
ENV HUB_HTTP_HOST=0.0.0.0 HUB_HTTP_PORT=8080
EXPOSE 8080
ENTRYPOINT ["hub"]
CMD ["run"]
