"""Load DeepSpeed checkpoints without running code from them.

DeepSpeed 0.19's ``TorchCheckpointEngine.load`` calls ``torch.load(weights_only=False)``: a full
unpickler, so a checkpoint file planted in the artifact store runs arbitrary code in the RL pod on
``--resume`` (or on the retry of a failed pod). HF's Trainer already loads its own files
(``optimizer.pt``, ``rng_state.pth``, ``scheduler.pt``) with ``weights_only=True``; this module
does the same for DeepSpeed's ``*_model_states.pt`` and ``*_optim_states.pt``.

The restricted unpickler accepts tensors, containers and primitives, plus the few DeepSpeed types
that a ZeRO 0-3 checkpoint holds (found with ``torch.serialization.get_unsafe_globals_in_checkpoint``
on real ZeRO-2/3 checkpoints): the loss scaler, the ZeRO stage enum and the fragment addresses of
ZeRO-1/2 and bf16 optimizers. None of them runs code when rebuilt (plain ``__dict__`` state or an
enum lookup).

The safe engine is installed only for the duration of :func:`safe_deepspeed_loading`, around the
trainer's ``train()`` call: DeepSpeed builds its checkpoint engine inside ``train()`` and loads the
checkpoint before any callback runs, so there is no later point to swap it in.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint file holds something other than tensors and allow-listed DeepSpeed state."""


def _allowed_globals() -> list[type]:
    from deepspeed.runtime.fp16.loss_scaler import (
        DynamicLossScaler,
        LossScaleConfig,
        LossScaleProfile,
        LossScaler,
    )
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, LossScaleConfig, LossScaleProfile, ZeroStageEnum, fragment_address]


def safe_load(path: str, map_location=None):
    """``torch.load`` with the restricted unpickler and the DeepSpeed allow-list.

    The allow-list is set for this call only (``safe_globals`` is a context manager), so nothing
    else in the process unpickles these types by accident.
    """
    import torch

    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it holds objects outside the tensors and DeepSpeed state a "
            f"checkpoint may hold, so it was not written by this training run (tampered with, or "
            f"from another program); delete the checkpoint to restart from the one before it. "
            f"torch said: {str(exc).splitlines()[0]}"
        ) from exc


def _safe_engine_class():
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    class SafeTorchCheckpointEngine(TorchCheckpointEngine):
        """DeepSpeed's torch engine, saving as before and loading with :func:`safe_load`."""

        def load(self, path: str, map_location=None):
            return safe_load(path, map_location=map_location)

    return SafeTorchCheckpointEngine


@contextmanager
def safe_deepspeed_loading() -> Iterator[None]:
    """Within this block every DeepSpeed engine that is created loads checkpoints with
    :func:`safe_load`. Only DeepSpeed's default torch engine is replaced; a config that asks for
    another engine (fast writer, decoupled, DataStates) is refused, since those load unsafely too."""
    import deepspeed.runtime.engine as ds_engine
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    original = ds_engine.create_checkpoint_engine
    safe_class = _safe_engine_class()

    def create_checkpoint_engine(config_params, *args, **kwargs):
        engine = original(config_params, *args, **kwargs)
        if type(engine) is not TorchCheckpointEngine:
            raise UnsafeCheckpointError(
                f"DeepSpeed chose the checkpoint engine {type(engine).__name__}, which unpickles "
                "checkpoints unsafely; remove the 'checkpoint' writer / 'datastates' section from "
                "the DeepSpeed config"
            )
        return safe_class(config_params)

    ds_engine.create_checkpoint_engine = create_checkpoint_engine
    try:
        yield
    finally:
        ds_engine.create_checkpoint_engine = original
