# syntax=docker/dockerfile:1
# archscore image: the API by default; workers are the same image with `archscore worker`
# (`--queues training` for the supernet trainer).
#
#   docker build -t archscore .                                   # CPU (python:3.11-slim, CPU torch)
#   docker build -t archscore:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04 \
#     --build-arg TORCH_INDEX_URL=https://pypi.org/simple .        # CUDA (or: docker-compose.gpu.yml)
#   make image                                                    # podman, a local Debian base, a local torch wheel
#
# A base without python3.11 (Debian or the Ubuntu-based CUDA images) gets it from apt, and every base gets
# libgomp1 (the OpenMP runtime of the LightGBM wheel); no compiler is
# installed in either case (every dependency ships a manylinux wheel), and the runtime stage holds only
# the venv. A folder of wheels passed as the build context `wheels` (`--build-context wheels=DIR`) is
# where torch comes from when it holds one, so nothing is downloaded for it.

ARG BASE_IMAGE=python:3.11-slim

# empty unless --build-context wheels=DIR replaces it
FROM scratch AS wheels

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# libgomp1: the OpenMP runtime LightGBM's wheel links against (the few-shot predictors)
RUN set -eux; \
    packages="libgomp1"; \
    if ! command -v python3.11 >/dev/null 2>&1; then \
        packages="$packages python3.11 python3.11-venv ca-certificates"; \
    fi; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages; \
    rm -rf /var/lib/apt/lists/*; \
    python3.11 --version

FROM base AS build
# CPU wheels by default; a CUDA build passes another index (https://pypi.org/simple or .../whl/cuXXX).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
# A build behind a TLS-inspecting proxy passes the host's CA bundle as the secret `ca`
# (`--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt`); it is used for the build's downloads only.
RUN --mount=type=bind,from=wheels,target=/wheels --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3.11 -m venv /opt/venv \
 && pip install --no-cache-dir --upgrade pip \
 && if ls /wheels/torch-"${TORCH_VERSION}"*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --find-links /wheels "torch==${TORCH_VERSION}"; \
    else \
        pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple \
            "torch==${TORCH_VERSION}"; \
    fi
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY archscore ./archscore
COPY estimators ./estimators
COPY service ./service
COPY workers ./workers
# (the import check runs from /: the sources in /src would shadow the installed package)
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install --no-cache-dir ".[service,plots]" \
 && cd / && python -c "import archscore.service.cli, archscore.workers.celery_app, lightgbm, torch; print('torch', torch.__version__)"

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
