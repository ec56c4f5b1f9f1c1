# syntax=docker/dockerfile:1
# archscore image: the API by default; workers are the same image with `archscore worker`
# (`--queues training` for the supernet trainer).
#
#   docker build -t archscore .                                   # CPU (python:3.11-slim, CPU torch)
#   docker build -t archscore:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04 \
#     --build-arg TORCH_INDEX_URL=https://pypi.org/simple .        # CUDA (or: docker-compose.gpu.yml)
#
# A base without python3.11 (the Ubuntu-based CUDA images) gets it from apt; no compiler is installed in
# either case (every dependency ships a manylinux wheel), and the runtime stage holds only the venv.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN set -eux; \
    if ! command -v python3.11 >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3.11 python3.11-venv ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3.11 --version

FROM base AS build
# CPU wheels by default; a CUDA build passes another index (https://pypi.org/simple or .../whl/cuXXX).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python3.11 -m venv /opt/venv \
 && pip install --no-cache-dir --upgrade pip \
 && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY archscore ./archscore
COPY estimators ./estimators
COPY service ./service
COPY workers ./workers
RUN pip install --no-cache-dir ".[service,plots]" \
 && python -c "import archscore.service.cli, archscore.workers.celery_app, torch; print('torch', torch.__version__)"

FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
# /app/supernets exists owned by the service user, so a fresh named volume mounted there is writable
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin archscore \
 && mkdir -p /app/supernets \
 && chown -R archscore:archscore /app
WORKDIR /app
USER archscore
ENV ARCHSCORE_DATA_DIR=/app/.archscore \
    ARCHSCORE_SUPERNET_DIR=/app/supernets \
    MPLCONFIGDIR=/app/.matplotlib \
    MPLBACKEND=Agg
# matplotlib's font cache, built once here rather than by the first study's request
RUN python -c "import matplotlib.pyplot"
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
CMD ["archscore", "api", "--host", "0.0.0.0", "--port", "8000"]
