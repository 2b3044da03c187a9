"""Fault injection for the tests of failed pilots (docs/reliability.md); never set in production."""

from __future__ import annotations

import json

from modomodo.config import ExperimentConfig

FAULT_ENV = "MODOMODO_FAULT_INJECTION"
"""FAULT INJECTION, FOR TESTS ONLY: a JSON object ``{"<run name>": "crash" | "kill" | "nan"}``;
the RL update of the run whose id starts with ``<experiment>-<run name>-`` raises before training
(``crash``), is killed with SIGKILL as the out-of-memory killer would (``kill``), loses its whole
step as a dead node would (``lost``: the training process kills its parent, the step's process,
then itself, once it has logged its attempt) or ends with NaN in its weights (``nan``, what a
diverged run leaves). Never set it in production."""


def injected_faults(cfg: ExperimentConfig, run_id: str) -> list:
    """The trainer callbacks of the fault :data:`FAULT_ENV` asks for on ``run_id`` (tests only)."""
    import os

    faults = json.loads(os.environ.get(FAULT_ENV) or "{}")
    fault = next((f for name, f in faults.items() if run_id.startswith(f"{cfg.name}-{name}-")), None)
    if fault == "crash":
        raise RuntimeError(f"fault injection ({FAULT_ENV}): run {run_id} crashed")
    if fault == "kill":  # what the out-of-memory killer does: no exception, no cleanup
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "lost":
        from transformers import TrainerCallback

        class LoseTheNode(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                import signal

                os.kill(os.getppid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)

        return [LoseTheNode()]
    if fault == "nan":
        from transformers import TrainerCallback

        class PoisonWeights(TrainerCallback):
            def on_train_end(self, args, state, control, model=None, **kwargs):
                import torch

                with torch.no_grad():
                    next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))

        return [PoisonWeights()]
    return []
