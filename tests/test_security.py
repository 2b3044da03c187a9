"""What a hostile writer to the artifact store or a hostile config can do, and what stops it.

Issue 13's findings, each reproduced as an attack: a pickle planted in a DeepSpeed checkpoint, a
manifest forged without the store's HMAC key, a database password that leaked into artifacts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modomodo.rl.grpo import checkpoint_key, restore_checkpoint
from modomodo.store import (
    HMAC_KEY_ENV,
    HMAC_OLD_KEYS_ENV,
    MANIFEST_NAME,
    LocalStore,
    ManifestSignatureError,
    ManifestSigner,
)

HERE = Path(__file__).parent
KEY = "k" * 32
OTHER_KEY = "o" * 32


# Finding 1: a planted pickle runs code on a DeepSpeed resume -----------------------------------


class _WritesMarker:
    """Unpickling this runs ``exec``: it writes ``marker``, as an attacker's payload would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _deepspeed(action: str, stage: int, folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    from servers import free_port

    env = {
        **os.environ,
        "MASTER_PORT": str(free_port()),
        # The test that trains with DeepSpeed uses the same cache: DeepSpeed JIT-compiles a helper once.
        "TORCH_EXTENSIONS_DIR": str(Path.home() / ".cache" / "modomodo-torch-extensions"),
    }
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR"):
        env.pop(name, None)
    argv = [sys.executable, str(HERE / "deepspeed_roundtrip.py"), action, str(stage), str(folder), *flags]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def _plant(checkpoint: Path, marker: Path) -> list[Path]:
    """Replace every DeepSpeed state file of the checkpoint with the payload."""
    planted = sorted(checkpoint.glob("global_step*/*.pt"))
    for path in planted:
        torch.save({"optimizer_state_dict": _WritesMarker(marker), "module": _WritesMarker(marker)}, path)
    return planted


@pytest.fixture(scope="module", params=[2, 3], ids=["zero2", "zero3"])
def deepspeed_checkpoint(request, tmp_path_factory) -> tuple[int, Path]:
    """A real ZeRO checkpoint of a tiny model, saved by a DeepSpeed engine."""
    folder = tmp_path_factory.mktemp(f"zero{request.param}") / "checkpoint-1"
    done = _deepspeed("save", request.param, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(folder.glob("global_step1/*optim_states.pt")), f"no ZeRO optimizer states in {folder}"
    return request.param, folder


def test_a_genuine_deepspeed_checkpoint_loads_through_the_safe_engine(deepspeed_checkpoint, tmp_path):
    stage, folder = deepspeed_checkpoint
    done = _deepspeed("load", stage, folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded step 1" in done.stdout


def test_a_pickle_planted_in_the_store_is_refused_on_resume(deepspeed_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv(HMAC_KEY_ENV, raising=False)  # the attacker rewrites files and manifest alike
    stage, folder = deepspeed_checkpoint
    store = LocalStore(tmp_path / "store")
    key = checkpoint_key("victim", 1)
    store.put_dir(folder, key)
    # The attacker: plant the payload in the stored files, then store a manifest that matches them.
    tampered = tmp_path / "tampered"
    store.get_dir(key, tampered)
    marker = tmp_path / "marker"
    assert _plant(tampered, marker)
    store.put_dir(tampered, key)

    trainer_dir = tmp_path / "trainer"
    restored = restore_checkpoint(store, "victim", trainer_dir)  # the store sees nothing wrong
    assert restored == trainer_dir / "checkpoint-1"
    done = _deepspeed("load", stage, restored)
    assert not marker.exists(), "the payload ran"
    assert done.returncode != 0, "the planted checkpoint was loaded"
    assert "refusing to load" in done.stderr and "global_step1" in done.stderr

    # The same files through DeepSpeed's stock engine run the payload: the attack is real.
    done = _deepspeed("load", stage, restored, "--unsafe")
    assert marker.read_text() == "pwned", done.stderr[-2000:]


# Finding 1: manifests signed with an HMAC key ---------------------------------------------------


def _artifact(folder: Path, content: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(content)
    (folder / "trainer_state.json").write_text('{"global_step": 1}')
    return folder


def _forge(store: LocalStore, key: str, content: bytes) -> None:
    """What a writer without the key can do: new file content and a manifest that matches it."""
    import hashlib

    (store.root / key / "model.safetensors").write_bytes(content)
    manifest_path = store.root / key / MANIFEST_NAME
    doc = json.loads(manifest_path.read_text())
    for entry in doc["files"]:
        if entry["path"] == "model.safetensors":
            entry.update(size=len(content), sha256=hashlib.sha256(content).hexdigest())
    manifest_path.write_text(json.dumps(doc))


def test_signed_manifests_round_trip_and_a_forged_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(HMAC_KEY_ENV, KEY)
    store = LocalStore(tmp_path / "store")
    manifest = store.put_dir(_artifact(tmp_path / "a"), "runs/r/ckpt")
    assert manifest.signature and manifest.signature["key_id"] == ManifestSigner.key_id(KEY.encode())
    assert store.get_dir("runs/r/ckpt", tmp_path / "back").signature == manifest.signature

    _forge(store, "runs/r/ckpt", b"evil weights")  # the old signature stays: it no longer matches
    with pytest.raises(ManifestSignatureError, match="does not match"):
        store.get_dir("runs/r/ckpt", tmp_path / "forged")
    assert not (tmp_path / "forged").exists()

    doc = json.loads((store.root / "runs/r/ckpt" / MANIFEST_NAME).read_text())
    del doc["signature"]  # or the attacker drops it
    (store.root / "runs/r/ckpt" / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(ManifestSignatureError, match="unsigned manifest refused"):
        store.get_dir("runs/r/ckpt", tmp_path / "unsigned")


def test_an_attacker_with_another_key_or_a_replayed_manifest_is_refused(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store", signer=ManifestSigner(OTHER_KEY.encode()))
    store.put_dir(_artifact(tmp_path / "a"), "runs/r/ckpt")  # signed, but with the attacker's key
    monkeypatch.setenv(HMAC_KEY_ENV, KEY)
    reader = LocalStore(tmp_path / "store")
    with pytest.raises(ManifestSignatureError, match="does not hold"):
        reader.read_manifest("runs/r/ckpt")

    # A genuine manifest copied under a newer key (an old checkpoint passed off as the newest).
    reader.put_dir(_artifact(tmp_path / "b"), "runs/r/step-1")
    _artifact(tmp_path / "store" / "runs/r/step-9")
    (store.root / "runs/r/step-9" / MANIFEST_NAME).write_bytes(
        (store.root / "runs/r/step-1" / MANIFEST_NAME).read_bytes()
    )
    with pytest.raises(ManifestSignatureError, match="does not match"):
        reader.read_manifest("runs/r/step-9")


def test_a_forged_checkpoint_is_refused_by_resume(tmp_path, monkeypatch):
    monkeypatch.setenv(HMAC_KEY_ENV, KEY)
    store = LocalStore(tmp_path / "store")
    store.put_dir(_artifact(tmp_path / "a"), checkpoint_key("run", 4))
    _forge(store, checkpoint_key("run", 4), b"evil weights")
    with pytest.raises(ManifestSignatureError):
        restore_checkpoint(store, "run", tmp_path / "trainer")
    assert not (tmp_path / "trainer" / "checkpoint-4").exists()


def test_key_rotation_old_key_verifies_then_resign_moves_to_the_new_key(tmp_path, monkeypatch):
    monkeypatch.setenv(HMAC_KEY_ENV, OTHER_KEY)
    LocalStore(tmp_path / "store").put_dir(_artifact(tmp_path / "a"), "runs/r/ckpt")
    monkeypatch.setenv(HMAC_KEY_ENV, KEY)  # rotated: new key signs, the old one still verifies
    monkeypatch.setenv(HMAC_OLD_KEYS_ENV, OTHER_KEY)
    store = LocalStore(tmp_path / "store")
    store.get_dir("runs/r/ckpt", tmp_path / "back")
    resigned = store.resign("runs/r/ckpt")
    assert resigned.signature["key_id"] == ManifestSigner.key_id(KEY.encode())
    monkeypatch.delenv(HMAC_OLD_KEYS_ENV)  # the old key retired
    assert LocalStore(tmp_path / "store").get_dir("runs/r/ckpt", tmp_path / "again").files == resigned.files


def test_a_store_without_a_key_still_reads_signed_and_unsigned_artifacts(tmp_path, monkeypatch):
    monkeypatch.delenv(HMAC_KEY_ENV, raising=False)
    LocalStore(tmp_path / "s", signer=ManifestSigner(KEY.encode())).put_dir(_artifact(tmp_path / "a"), "x")
    LocalStore(tmp_path / "s").put_dir(_artifact(tmp_path / "b"), "y")
    assert LocalStore(tmp_path / "s").read_manifest("x").signature is not None
    assert LocalStore(tmp_path / "s").read_manifest("y").signature is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [({HMAC_KEY_ENV: "short"}, "at least 32 bytes"), ({HMAC_OLD_KEYS_ENV: KEY}, "is not")],
)
def test_bad_key_settings_are_named(tmp_path, monkeypatch, env, problem):
    monkeypatch.delenv(HMAC_KEY_ENV, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=problem):
        LocalStore(tmp_path)


# Finding 2: the study database's password in artifacts, logs and metrics -----------------------


def _search(out_dir: Path, storage: str, pushgateway: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MODOMODO_STUDY_STORAGE": storage}
    argv = [sys.executable, str(HERE / "search_process.py"), str(out_dir), pushgateway]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_searches_share_one_postgres_study_and_the_password_is_written_nowhere(
    postgresql, pushgateway, tmp_path
):
    import optuna

    # Two search pods at once on one study (same records, so the same input-derived study name).
    running = [_search(tmp_path / f"search-{i}", postgresql.url, pushgateway) for i in range(2)]
    outputs = [process.communicate(timeout=600) for process in running]
    for process, (_, stderr) in zip(running, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    saved = [json.loads((tmp_path / f"search-{i}" / "proposals.json").read_text()) for i in range(2)]
    name = saved[0]["study_name"]
    assert saved[1]["study_name"] == name
    assert saved[0]["storage"] == postgresql.url.replace(f":{postgresql.password}@", ":***@")

    # No trial lost: every trial either search ran is in the study, complete; the observed runs
    # were enqueued once; a third search finds nothing missing and runs no trial.
    study = optuna.load_study(study_name=name, storage=postgresql.url)
    trials = study.get_trials(deepcopy=False)
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
    observed = [t for t in trials if t.user_attrs.get("source") == "observed"]
    assert len(observed) == study.user_attrs["enqueued"], "observed runs enqueued twice"
    assert len(trials) == study.user_attrs["enqueued"] + 30, "both searches ran the missing trials"
    third = tmp_path / "search-2"
    stdout, stderr = _search(third, postgresql.url, pushgateway).communicate(timeout=600)
    outputs.append((stdout, stderr))
    assert len(optuna.load_study(study_name=name, storage=postgresql.url).trials) == len(trials)

    # The mixture CLI on the same study, with a plain postgresql:// URL (libpq's form).
    plain = postgresql.url.replace("postgresql+psycopg://", "postgresql://")
    cli = subprocess.run(
        [sys.executable, "-m", "modomodo.cli", "mixture", "propose", "--runs", str(third / "records.csv"),
         "--target", "out_score", "--trials", "30", "--storage", plain, "--k", "3"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "rerun to resume" in cli.stdout and "modomodo:***@" in cli.stdout
    outputs.append((cli.stdout, cli.stderr))

    # A storage URL that does not parse is named without its password.
    bad = subprocess.run(
        [sys.executable, "-m", "modomodo.cli", "mixture", "propose", "--runs", str(third / "records.csv"),
         "--storage", f"postgresql://modomodo:{postgresql.password}@127.0.0.1:notaport/db"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2 and "is not a database URL" in bad.stderr, bad.stderr[-2000:]
    outputs.append((bad.stdout, bad.stderr))

    # Everything the runs wrote: files, stdout/stderr and logs, the metrics they pushed.
    import urllib.request

    pushed = urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5).read().decode()
    assert 'run="shared"' in pushed and 'stage="search"' in pushed
    texts = {"pushed metrics": pushed}
    for i, (stdout, stderr) in enumerate(outputs):
        texts[f"process {i} stdout"], texts[f"process {i} stderr"] = stdout, stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 9  # proposals.json, simplex.png, records.csv per search, ...
    for path in files:
        texts[str(path)] = path.read_bytes().decode("latin-1")
    leaked = [where for where, text in texts.items() if postgresql.password in text]
    assert not leaked, f"the database password was written to {leaked}"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql+psycopg://u:pw@db:5432/optuna", "postgresql+psycopg://u:***@db:5432/optuna"),
        ("postgresql://u:p%40ss@[::1]/db", "postgresql://u:***@[::1]/db"),
        ("postgresql://u@db/optuna?password=pw&sslmode=require", "postgresql://u@db/optuna?password=***&sslmode=require"),
        ("http://gw:pw@pushgateway:9091", "http://gw:***@pushgateway:9091"),
        ("s3://b/k?X-Amz-Signature=abc&X-Amz-Credential=c", "s3://b/k?X-Amz-Signature=***&X-Amz-Credential=***"),
        ("postgresql://u:pw@db:notaport/x", "postgresql://***"),
        ("sqlite:////data/study.db", "sqlite:////data/study.db"),
        ("http://pushgateway:9091", "http://pushgateway:9091"),
        ("relative/study.db", "relative/study.db"),
        (None, None),
    ],
)  # fmt: skip
def test_redact_url_hides_passwords_and_secret_parameters_only(url, redacted):
    from modomodo.redact import redact_url

    assert redact_url(url) == redacted


def test_s3_errors_name_the_endpoint_without_its_password(tmp_path):
    from servers import free_port

    from modomodo.retry import RetryPolicy
    from modomodo.store import S3Store, StoreError

    endpoint = f"http://admin:hunter2-secret@127.0.0.1:{free_port()}"  # nothing listens there
    store = S3Store("b", endpoint_url=endpoint, access_key="a", secret_key="s", max_attempts=1,
                    retry=RetryPolicy(attempts=1), connect_timeout=1)  # fmt: skip
    with pytest.raises(StoreError) as error:
        store.get_bytes("x")
    assert "hunter2-secret" not in str(error.value) and "admin:***@127.0.0.1" in str(error.value)


# Finding 8 and the store's key limits -----------------------------------------------------------


@pytest.mark.parametrize("run_id", ["x/../y", "a/b", "../up", ".hidden", "x" * 300, "bad\udc80"])
def test_a_bad_run_id_fails_before_any_work(tmp_path, run_id):
    from typer.testing import CliRunner

    from modomodo.cli import app

    missing = tmp_path / "no-such-data"  # the check comes before the data is even opened
    result = CliRunner().invoke(
        app, ["train", "--data", str(missing), "--base", str(missing), "--out", str(tmp_path / "run"),
              "--run-id", run_id],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--run-id" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("a/" * 2000 + "b", "bytes, more than"),
        ("a/" * 40 + "b", "41 segments"),
        ("x" * 5000, "bytes, more than"),
        ("runs/" + "y" * 300, "a segment of 300 bytes"),
        ("runs/\udc80", "not valid Unicode"),
    ],
)
def test_over_long_and_over_deep_keys_are_clear_errors(tmp_path, key, problem):
    from modomodo.store import InvalidKeyError

    store = LocalStore(tmp_path / "store")
    with pytest.raises(InvalidKeyError, match=problem):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError, match=problem):
        store.put_dir(_artifact(tmp_path / "a"), key)


# Finding 6: the local store under SIGKILL -------------------------------------------------------


def _killed_put(root: Path, source: Path, key: str, moment: str) -> None:
    argv = [sys.executable, str(HERE / "killed_put.py"), str(root), str(source), key, moment]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, f"expected SIGKILL, got rc {done.returncode}: {done.stderr[-2000:]}"


def test_an_overwrite_killed_before_the_swap_keeps_the_old_artifact(tmp_path, monkeypatch):
    monkeypatch.delenv(HMAC_KEY_ENV, raising=False)
    store = LocalStore(tmp_path / "store")
    store.put_dir(_artifact(tmp_path / "old", b"old weights"), "runs/r/ckpt", metadata={"v": 1})
    _killed_put(store.root, _artifact(tmp_path / "new", b"new weights"), "runs/r/ckpt", "swap")
    back = store.get_dir("runs/r/ckpt", tmp_path / "back")  # the old one, whole
    assert (
        back.metadata == {"v": 1} and (tmp_path / "back" / "model.safetensors").read_bytes() == b"old weights"
    )
    # The next put of the key goes through and leaves nothing behind.
    store.put_dir(_artifact(tmp_path / "new"), "runs/r/ckpt", metadata={"v": 2})
    assert store.read_manifest("runs/r/ckpt").metadata == {"v": 2}
    assert list((store.root / ".staging").iterdir()) == []


def test_staging_copies_of_killed_puts_are_removed_by_the_next_put(tmp_path):
    store = LocalStore(tmp_path / "store")
    big = _artifact(tmp_path / "big")
    (big / "more.bin").write_bytes(os.urandom(1 << 20))
    for _ in range(3):  # each put removes what the one before it left
        _killed_put(store.root, big, "runs/r/ckpt", "copy")
        leftovers = [p for p in (store.root / ".staging").iterdir() if p.is_dir()]
        assert len(leftovers) == 1 and not store.exists("runs/r/ckpt")
    store.put_dir(_artifact(tmp_path / "small"), "runs/other/ckpt")
    assert list((store.root / ".staging").iterdir()) == []
    assert store.list_artifacts() == ["runs/other/ckpt"]


def test_put_bytes_onto_an_artifact_key_is_a_clear_error(tmp_path):
    from modomodo.store import InvalidKeyError

    store = LocalStore(tmp_path / "store")
    store.put_dir(_artifact(tmp_path / "a"), "runs/r/ckpt")
    with pytest.raises(InvalidKeyError, match="holds an artifact"):
        store.put_bytes("runs/r/ckpt", b"{}")
    assert sorted(p.name for p in (store.root / "runs/r").iterdir()) == ["ckpt"]  # no temp file
    assert store.get_dir("runs/r/ckpt", tmp_path / "back").files
