# Image for a Hugging Face Space or any Docker host: one port (8000), the
# dashboard at /web, a health check on /health.
FROM python:3.11-slim

ENV UV_COMPILE_BYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv

RUN pip install --no-cache-dir uv==0.13.8

WORKDIR /app

# Optional extras, e.g. --build-arg EXTRAS="--extra ray" for replicas on Ray (KubeRay: see the README).
ARG EXTRAS=""

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project $EXTRAS

COPY . .
RUN uv sync --frozen --no-dev --no-editable $EXTRAS

# Hugging Face Spaces run the container as user 1000.
RUN useradd --create-home --uid 1000 user
USER user

ENV PATH="/opt/venv/bin:$PATH" \
    WORKFLOW_ORCHESTRATOR_ARCHIVE_PATH=/home/user/archive/episodes.sqlite3
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)" || exit 1

# The dashboard is on by default; set ENABLE_WEB_INTERFACE=false to leave it out.
# Listening on every address: set WORKFLOW_ORCHESTRATOR_TOKEN (the server warns without one).
CMD ["server", "--host", "0.0.0.0", "--port", "8000"]
