# syntax=docker/dockerfile:1
# modomodo CPU image: the light pipeline steps (curate-data, plan-*-pilots, run-record,
# fit-surrogate, search-mixture, report) and the CLI. docs/images.md explains both images.
# Build with scripts/build_images.sh (tag, labels), or from the repository root:
#   docker build -f images/cpu.Dockerfile -t ghcr.io/modomodo/modomodo:0.1.0 .
# Single stage: every dependency is a wheel or pure Python (DeepSpeed builds without its ops), so
# no compiler is installed and a builder stage would save nothing.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Shell with pipefail for every RUN below.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Dependencies first, from the lock alone: this layer is rebuilt only when pyproject.toml,
# constraints.txt or the install script change, not when the source does.
WORKDIR /build
COPY pyproject.toml constraints.txt ./
COPY images/install.sh images/install.sh
# PyTorch's CPU index: the CPU build of the locked torch (PyPI's build carries CUDA, ~4 GB more).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN PYTHON=python3.11 images/install.sh deps /opt/venv

# The package, without dependencies (they are the layer above).
COPY README.md ./
COPY src ./src
COPY components ./components
COPY pipelines ./pipelines
RUN images/install.sh app /opt/venv \
    && rm -rf /build

# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --gid 10001 modomodo \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin modomodo
USER 10001:10001
WORKDIR /home/modomodo

# Pipeline steps are batch pods: Kubernetes ignores Docker health checks and judges a step by its
# exit code, so the image declares none.
HEALTHCHECK NONE
CMD ["modomodo", "--help"]

# Last, so that a new revision or date does not invalidate the layers above.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/modomodo/modomodo
LABEL org.opencontainers.image.title="modomodo" \
      org.opencontainers.image.description="modomodo CPU runtime: data curation, mixture search, reports" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
