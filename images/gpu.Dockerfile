# syntax=docker/dockerfile:1
# modomodo GPU image: the GPU steps (base-policy, rollout-reward, rl-update, evaluate) and the
# Kubeflow Trainer's DeepSpeed workers. docs/images.md explains the build arguments.
# Build with scripts/build_images.sh, or from the repository root:
#   docker build -f images/gpu.Dockerfile -t ghcr.io/modomodo/modomodo-gpu:0.1.0 .
#
# CUDA ships once. The locked torch (2.13.0) from PyPI is the CUDA 13.0 build, and its wheels
# (cuda-toolkit 13.0.3: cuBLAS, cuFFT, cuRAND, cuSOLVER, cuSPARSE, NVRTC...; nvidia-cudnn-cu13,
# nvidia-nccl-cu13) carry every CUDA library torch loads. So the runtime stage starts from
# nvidia/cuda's *base* flavour, which adds only the CUDA runtime, the forward-compatibility package
# and the variables through which the NVIDIA container toolkit mounts the node's driver; the
# `runtime`/`cudnn-runtime` flavours would ship cuBLAS, cuDNN and NCCL a second time (several GB).
# The CUDA version of both stages matches torch's (13.0): change them together (docs/images.md).

# --- builder: nvcc and headers, to compile the CUDA extensions into wheels; never shipped ---
FROM nvidia/cuda:13.0.0-devel-ubuntu22.04 AS builder
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Ubuntu's python3.11 keeps the images on the Python minor that CI tests and the lock was made on.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev g++ git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml constraints.txt ./
COPY images/install.sh images/install.sh
# DeepSpeed ops compiled ahead of time: the runtime stage has no nvcc to JIT-compile them
# (FusedAdam when a DeepSpeed config names its optimizer, CPUAdam for optimizer offload).
# Empty: none (a config that needs one then fails at its first use).
ARG DEEPSPEED_OPS="FUSED_ADAM CPU_ADAM"
# 1: build flash-attention (FlashAttention-2) for attn_implementation="flash_attention_2".
ARG WITH_FLASH_ATTN=0
ARG FLASH_ATTN_VERSION=2.8.3.post2
# Ampere (A100), Hopper (H100/H200), Blackwell (B200, RTX 50): the GPUs the extensions are built for.
ARG TORCH_CUDA_ARCH_LIST="8.0;9.0;10.0;12.0"
# DS_ACCELERATOR=cuda: a build has no GPU, and DeepSpeed would otherwise build its CPU variants.
RUN if [ "$WITH_FLASH_ATTN" != 1 ]; then FLASH_ATTN_VERSION=; fi \
    && PYTHON=python3.11 DS_ACCELERATOR=cuda DEEPSPEED_OPS=$DEEPSPEED_OPS FLASH_ATTN_VERSION=$FLASH_ATTN_VERSION \
       images/install.sh wheels /opt/build-venv /wheels

# --- runtime: no compiler, no CUDA toolkit ---
FROM nvidia/cuda:13.0.0-base-ubuntu22.04
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# 1: vLLM for fast generation in GRPO rollouts (TRL's use_vllm). 0.30.0 is the newest release whose
# own pins agree with the lock (torch==2.13.0; 0.31-0.32 cap transformers below the locked 5.24,
# 0.33 needs torch 2.14). Triton, which vLLM's kernels use, compiles a small launcher at first use,
# so this also installs a C compiler and the Python headers.
ARG WITH_VLLM=0
ARG VLLM_VERSION=0.30.0
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
    && if [ "$WITH_VLLM" = 1 ]; then apt-get install -y --no-install-recommends gcc libc6-dev python3.11-dev; fi \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from the lock alone (and the builder's wheels, bind-mounted so that they
# add no layer): rebuilt only when pyproject.toml, constraints.txt or the install script change.
WORKDIR /build
COPY pyproject.toml constraints.txt ./
COPY images/install.sh images/install.sh
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    PYTHON=python3.11 EXTRA_WHEELS=/wheels WITH_VLLM=$WITH_VLLM VLLM_VERSION=$VLLM_VERSION \
    images/install.sh deps /opt/venv

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
# Where DeepSpeed and Triton cache JIT builds: a writable path under the user's home.
ENV TORCH_EXTENSIONS_DIR=/home/modomodo/.cache/torch_extensions \
    TRITON_CACHE_DIR=/home/modomodo/.cache/triton

# Pipeline steps and Trainer workers are batch pods: Kubernetes ignores Docker health checks and
# judges them by exit code (the RL update also serves /metrics), so the image declares none.
HEALTHCHECK NONE
CMD ["modomodo", "--help"]

# Last, so that a new revision or date does not invalidate the layers above.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/modomodo/modomodo
LABEL org.opencontainers.image.title="modomodo-gpu" \
      org.opencontainers.image.description="modomodo GPU runtime: policy, rollouts, GRPO training (DeepSpeed), evaluation" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/nvidia/cuda:13.0.0-base-ubuntu22.04"
