"""Kubeflow Pipelines components: one thin typed wrapper per stage of ``modomodo.stages``.

Every component is a lightweight Python component on one of modomodo's images (built from
``images/`` by ``scripts/build_images.sh``, the package installed), with
``install_kfp_package=False`` so that a pod needs no package index. Its body imports the library and
maps KFP artifacts to library calls. The same component runs in kfp's local runner (with the
current interpreter) and in its container on a cluster; kfp's local runner refuses components built
with ``target_image``, so there are none.

The steps that ``modomodo.pipelines.settings.STEPS`` runs on a GPU use ``GPU_IMAGE``, every other
step ``RUNTIME_IMAGE``; tests/test_images.py checks that the two agree.

Component modules do not use ``from __future__ import annotations``: kfp reads the signature's
annotations as types, and postponed (string) annotations would turn ``dict`` into an artifact name.
"""

import os

from modomodo import __version__

REGISTRY = "ghcr.io/modomodo"
"""Where ``scripts/build_images.sh`` pushes the release images (its ``REGISTRY`` default)."""

RUNTIME_IMAGE = os.environ.get("MODOMODO_IMAGE", f"{REGISTRY}/modomodo:{__version__}")
"""The CPU image the light steps run in; read when the components are first imported (set
``MODOMODO_IMAGE`` or use ``modomodo compile --image`` to compile against another tag)."""

GPU_IMAGE = os.environ.get("MODOMODO_GPU_IMAGE", f"{REGISTRY}/modomodo-gpu:{__version__}")
"""The CUDA image of the GPU steps (base-policy, base-policy-and-evaluate, rollout-reward,
rl-update, evaluate, train-and-evaluate); set ``MODOMODO_GPU_IMAGE`` or use ``modomodo compile --gpu-image``."""
