"""Resume picks the newest *complete* checkpoint: a half-written folder on disk never wins."""

from __future__ import annotations

from pathlib import Path

from modomodo.rl.grpo import TRAINER_STATE_FILE, checkpoint_key, latest_checkpoint, restore_checkpoint
from modomodo.store import ArtifactStore


def _checkpoint(folder: Path, step: int, *, complete: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(f"weights {step}".encode())
    if complete:
        (path / TRAINER_STATE_FILE).write_text(f'{{"global_step": {step}}}')
    return path


def test_latest_checkpoint_skips_folders_without_trainer_state(tmp_path):
    _checkpoint(tmp_path, 3)
    _checkpoint(tmp_path, 6)
    _checkpoint(tmp_path, 9, complete=False)  # a save killed before trainer_state.json
    (tmp_path / "checkpoint-notes").mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-6"
    assert latest_checkpoint(tmp_path / "nowhere") is None


def test_restore_prefers_the_store_over_an_incomplete_newer_local_folder(tmp_path):
    store = ArtifactStore.from_uri(str(tmp_path / "store"))
    store.put_dir(_checkpoint(tmp_path / "saved", 6), checkpoint_key("run", 6))
    trainer_dir = tmp_path / "trainer"
    _checkpoint(trainer_dir, 3)
    _checkpoint(trainer_dir, 9, complete=False)
    restored = restore_checkpoint(store, "run", trainer_dir)
    assert restored == trainer_dir / "checkpoint-6"
    assert (restored / TRAINER_STATE_FILE).read_text() == '{"global_step": 6}'


def test_restore_replaces_a_killed_download(tmp_path):
    store = ArtifactStore.from_uri(str(tmp_path / "store"))
    store.put_dir(_checkpoint(tmp_path / "saved", 6), checkpoint_key("run", 6))
    trainer_dir = tmp_path / "trainer"
    _checkpoint(trainer_dir, 6, complete=False)  # the download of an earlier try stopped half-way
    staging = trainer_dir / ".checkpoint-6.download"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"partial")
    restored = restore_checkpoint(store, "run", trainer_dir)
    assert restored == trainer_dir / "checkpoint-6"
    assert (restored / "model.safetensors").read_bytes() == b"weights 6"
    assert (restored / TRAINER_STATE_FILE).is_file()
    assert not staging.exists()


def test_restore_keeps_a_complete_local_checkpoint_at_least_as_new(tmp_path):
    store = ArtifactStore.from_uri(str(tmp_path / "store"))
    store.put_dir(_checkpoint(tmp_path / "saved", 6), checkpoint_key("run", 6))
    local = _checkpoint(tmp_path / "trainer", 9)
    assert restore_checkpoint(store, "run", tmp_path / "trainer") == local


def test_load_weights_reads_a_saved_qwen2_vl_whatever_its_key_layout(tmp_path):
    # save_pretrained writes Qwen2-VL in its original layout (visual.*, model.layers.*); the Trainer's
    # raw state-dict reload misses every key, so resume loads the weights through from_pretrained.
    import torch
    from safetensors.torch import load_file
    from tiny import build_test_model

    from modomodo.data.synthetic import generate
    from modomodo.policy.load import load_policy, load_weights, save_policy

    folder = build_test_model(tmp_path / "tiny", generate("geo", "train", 4, seed=0))
    model, processor = load_policy(folder, "fp32")
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.5)
    saved = save_policy(model, processor, tmp_path / "trained", source=folder)
    assert any(k.startswith("visual.") for k in load_file(saved / "model.safetensors"))  # the layout at issue

    fresh, _ = load_policy(folder, "fp32")
    load_weights(fresh, saved)
    assert all(
        torch.equal(a, b)
        for a, b in zip(fresh.state_dict().values(), model.state_dict().values(), strict=True)
    )
