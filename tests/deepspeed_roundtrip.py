"""Helper process for tests/test_security.py: one DeepSpeed engine on a tiny model (CPU, gloo, one
rank) saves a ZeRO checkpoint or loads one, the way the RL pod does (DeepSpeed needs a process of
its own: it initialises torch.distributed once per process).

Usage: python deepspeed_roundtrip.py save|load STAGE DIR [--unsafe]
``--unsafe`` loads with DeepSpeed's stock engine (what modomodo did before safe_checkpoint).
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext

import torch


def main(action: str, stage: int, folder: str, unsafe: bool) -> None:
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    import deepspeed

    from modomodo.rl.safe_checkpoint import safe_deepspeed_loading

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    config = {
        "train_micro_batch_size_per_gpu": 2,
        "zero_optimization": {"stage": stage},
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "torch_adam": True}},
    }
    with nullcontext() if unsafe else safe_deepspeed_loading():
        engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
        if action == "save":
            engine.backward(engine(torch.ones(2, 4)).sum())
            engine.step()
            engine.save_checkpoint(folder)
        else:
            path, _ = engine.load_checkpoint(folder)
            assert path is not None, f"no checkpoint loaded from {folder}"
            print("loaded step", engine.global_steps)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], "--unsafe" in sys.argv[4:])
