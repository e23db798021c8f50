# The gecko_temporal worker image: `docker build -t gecko-temporal .`
# Run: docker run -e TEMPORAL_ADDRESS=host:7233 gecko-temporal python worker.py mypkg.flows:wf
FROM python:3.12.10-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# Dependencies first (cached while only the code changes).
COPY pyproject.toml README.md ./
COPY gecko_temporal ./gecko_temporal
RUN pip install .

COPY worker.py ./
COPY examples ./examples

RUN useradd --create-home gecko && chown -R gecko /app
USER gecko

STOPSIGNAL SIGTERM
CMD ["python", "worker.py", "examples.report_pipeline:workflow"]
