"""Kubeflow Pipelines components: one thin typed wrapper per stage of ``modomodo.stages``.

Every component is a lightweight Python component on modomodo's runtime image (built from
``images/``, the package installed), with ``install_kfp_package=False`` so that a pod needs no
package index. Its body imports the library and maps KFP artifacts to library calls. The same
component runs in kfp's local runner (with the current interpreter) and in its container on a
cluster; kfp's local runner refuses components built with ``target_image``, so there are none.

Component modules do not use ``from __future__ import annotations``: kfp reads the signature's
annotations as types, and postponed (string) annotations would turn ``dict`` into an artifact name.
"""

import os

RUNTIME_IMAGE = os.environ.get("MODOMODO_IMAGE", "ghcr.io/modomodo/modomodo:0.1.0")
"""The image every component runs in; read when the components are first imported (set
``MODOMODO_IMAGE`` or use ``modomodo compile --image`` to compile against another tag)."""
