"""``s3://`` sources against a real SeaweedFS: a Parquet object, a JSONL object and a
``save_to_disk`` folder under a prefix, named in a config and curated by ``modomodo data curate``;
the dataset cache (reused, refreshed, never a partial copy); and every error naming the URI
before anything is written."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import datasets
import pytest
from test_curate_sources import chartqa_parquet, png
from typer.testing import CliRunner

from modomodo.cli.app import app
from modomodo.config import ConfigError, load_config
from modomodo.data.curate import read_curated
from modomodo.data.s3_source import CACHE_FOLDER, fetch_s3, locate_s3
from modomodo.data.sources import SourceError
from modomodo.stages.curate import curate_stage

REWARDS = [{"name": "format"}, {"name": "accuracy"}]


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """The environment an S3 source is read with (the store's settings), a fresh prefix and cache."""
    monkeypatch.setenv("MODOMODO_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("MODOMODO_DATASET_CACHE", str(tmp_path / "cache"))
    return s3_server


def put(server, key: str, path: Path) -> str:
    server.client().upload_file(str(path), server.bucket, key)
    return f"s3://{server.bucket}/{key}"


def put_tree(server, prefix: str, folder: Path) -> str:
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        put(server, f"{prefix}/{file.relative_to(folder).as_posix()}", file)
    return f"s3://{server.bucket}/{prefix}"


def quiz_jsonl(path: Path) -> Path:
    """Three multiple-choice rows in the paper's columns, each image base64 in the row."""
    rows = [
        {
            "image": base64.b64encode(png(30 + i, 30, (20 * i, 90, 90))).decode(),
            "problem": f"Which colour is picture {i}?\nA. red\nB. grey",
            "solution": "<answer> B </answer>",
        }
        for i in range(3)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def chartqa_saved(folder: Path) -> Path:
    features = datasets.Features(
        {"image": datasets.Image(), "query": datasets.Value("string"), "label": datasets.Value("string")}
    )
    datasets.Dataset.from_dict(
        {"image": [png(50, 40), png(40, 50)], "query": ["a?", "b?"], "label": ["7", "8"]}, features=features
    ).save_to_disk(str(folder))
    return folder


def overrides(domain_uri: str, benchmarks: dict) -> list[str]:
    domains = {"quiz": {"source": domain_uri, "rewards": REWARDS}}
    return [f"data.domains={json.dumps(domains)}", f"data.benchmarks={json.dumps(benchmarks)}"]


def curate_cli(out: Path, sets: list[str]):
    args = ["data", "curate", "--out", str(out)]
    for item in sets:
        args += ["--set", item]
    return CliRunner().invoke(app, args)


def test_parquet_jsonl_and_a_saved_dataset_under_a_prefix_are_curated_from_s3(s3_env, tmp_path):
    run = tmp_path.name
    quiz = put(s3_env, f"{run}/quiz/train.jsonl", quiz_jsonl(tmp_path / "up" / "train.jsonl"))
    chart = put(s3_env, f"{run}/chartqa/test.parquet", chartqa_parquet(tmp_path / "up" / "c.parquet", 3))
    saved = put_tree(s3_env, f"{run}/saved", chartqa_saved(tmp_path / "up" / "saved"))
    benchmarks = {
        "chartqa": {"path": chart, "layout": "chartqa"},
        "saved": {"path": saved, "layout": "chartqa"},
    }
    result = curate_cli(tmp_path / "out", overrides(quiz, benchmarks))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    report = json.loads((out / "curation.json").read_text())
    assert {n: report["rows"][n] for n in ("quiz", "chartqa", "saved")} == {
        "quiz": {"train": 3, "test": 0},
        "chartqa": {"train": 0, "test": 3},
        "saved": {"train": 0, "test": 2},
    }
    assert {e.solution for e in read_curated(out, "quiz", "train")} == {"B"}
    assert sorted(e.solution for e in read_curated(out, "chartqa", "test")) == ["0", "10", "20"]
    assert sorted(e.solution for e in read_curated(out, "saved", "test")) == ["7", "8"]
    # Read from the cache exactly as a local path: the object as its file, the prefix as its folder.
    sources = report["sources"]
    cache = tmp_path / "cache" / CACHE_FOLDER / s3_env.bucket
    assert Path(sources["quiz"]["path"]).name == "train.jsonl"
    assert Path(sources["quiz"]["path"]).parent.parent == cache
    assert (Path(sources["saved"]["test_path"]) / "state.json").is_file()
    assert not list(cache.glob(".*fetching-*")), "no temporary folder is left behind"


def test_the_cache_is_reused_until_the_object_changes(s3_env, tmp_path):
    key = f"{tmp_path.name}/c.parquet"
    uri = put(s3_env, key, chartqa_parquet(tmp_path / "a.parquet", 2))
    cache = tmp_path / "cache"
    first = fetch_s3(uri, cache)
    stamp = first.stat().st_mtime_ns
    assert locate_s3(uri).fetch(cache) == first and first.stat().st_mtime_ns == stamp, "reused"
    put(s3_env, key, chartqa_parquet(tmp_path / "b.parquet", 4))
    again = locate_s3(uri).fetch(cache)
    assert again == first and again.read_bytes() == (tmp_path / "b.parquet").read_bytes(), "fetched anew"


def test_a_download_that_fails_halfway_leaves_no_copy_and_keeps_the_old_one(s3_env, tmp_path):
    prefix = f"{tmp_path.name}/saved"
    uri = put_tree(s3_env, prefix, chartqa_saved(tmp_path / "saved"))
    cache = tmp_path / "cache"
    good = locate_s3(uri).fetch(cache)
    before = sorted(p.relative_to(good) for p in good.rglob("*"))
    # A new version is listed, then one of its objects vanishes before the download reaches it.
    put(s3_env, f"{prefix}/extra.json", tmp_path / "saved" / "state.json")
    listed = locate_s3(uri)
    arrow = next(name for name, _, _ in listed.objects if name.endswith(".arrow"))
    s3_env.client().delete_object(Bucket=s3_env.bucket, Key=f"{prefix}/{arrow}")
    with pytest.raises(SourceError, match=rf"download s3://{s3_env.bucket}/{prefix}/{arrow}: not found"):
        listed.fetch(cache)
    assert sorted(p.relative_to(good) for p in good.rglob("*")) == before, "the complete copy is kept"
    assert not list(good.parent.glob(".*fetching-*")), "the partial download is removed"
    # A changed object whose size disagrees with the listing is refused too.
    put(s3_env, f"{prefix}/{arrow}", tmp_path / "saved" / "state.json")
    listed = locate_s3(uri)
    put(s3_env, f"{prefix}/extra.json", chartqa_parquet(tmp_path / "big.parquet", 3))
    with pytest.raises(SourceError, match="extra.json arrived with .* bytes, the listing says"):
        listed.fetch(cache)
    assert sorted(p.relative_to(good) for p in good.rglob("*")) == before


def curate_fails(tmp_path: Path, sets: list[str], match: str) -> None:
    """``data curate`` stops with ``match`` on stderr (rc 1, no traceback) and writes nothing."""
    result = curate_cli(tmp_path / "out", sets)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "source error:" in result.output and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert match in text, text
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_missing_bucket_key_or_prefix_is_named_before_anything_is_written(s3_env, tmp_path):
    good = put(s3_env, f"{tmp_path.name}/quiz.jsonl", quiz_jsonl(tmp_path / "quiz.jsonl"))
    bucket = s3_env.bucket
    missing_key = f"s3://{bucket}/{tmp_path.name}/nothing/test.parquet"
    # The good domain comes first: it is not fetched either, because every URI is checked first.
    curate_fails(
        tmp_path,
        overrides(good, {"chartqa": {"path": missing_key, "layout": "chartqa"}}),
        f"data.benchmarks.chartqa.path: {missing_key}: no object and no prefix {tmp_path.name}/nothing/test.parquet/ in bucket '{bucket}'",
    )
    curate_fails(
        tmp_path,
        overrides(good, {"chartqa": {"path": "s3://no-such-bucket-here/x.parquet", "layout": "chartqa"}}),
        "data.benchmarks.chartqa.path: list s3://no-such-bucket-here/x.parquet: bucket 'no-such-bucket-here' does not exist",
    )
    text = put(s3_env, f"{tmp_path.name}/notes.txt", tmp_path / "quiz.jsonl")
    curate_fails(
        tmp_path,
        overrides(text, {}),
        f"data.domains.quiz.source: {text}: an object must be a .parquet or .jsonl file",
    )


def test_missing_or_wrong_credentials_are_named(s3_env, tmp_path, monkeypatch):
    uri = put(s3_env, f"{tmp_path.name}/quiz.jsonl", quiz_jsonl(tmp_path / "quiz.jsonl"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):  # no profile of this machine
        monkeypatch.setenv(name, str(tmp_path / "absent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    curate_fails(
        tmp_path,
        overrides(uri, {}),
        f"data.domains.quiz.source: list {uri}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_env.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    curate_fails(tmp_path, overrides(uri, {}), f"refused access to s3://{s3_env.bucket}")


def test_an_unreachable_endpoint_is_a_clear_error(s3_env, tmp_path, monkeypatch):
    from servers import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MODOMODO_S3_ENDPOINT", endpoint)
    uri = f"s3://{s3_env.bucket}/{tmp_path.name}/quiz.jsonl"
    curate_fails(
        tmp_path,
        overrides(uri, {}),
        f"data.domains.quiz.source: list {uri}: cannot reach the S3 endpoint {endpoint}",
    )


def test_an_s3_uri_is_checked_at_config_load():
    assert load_config("smoke", overrides("s3://bucket/quiz/train.jsonl", {})).data.domains[
        "quiz"
    ].source == ("s3://bucket/quiz/train.jsonl")
    with pytest.raises(ConfigError, match=r"data.domains.quiz: s3://bucket: expected s3://BUCKET/KEY"):
        load_config("smoke", overrides("s3://bucket", {}))
    with pytest.raises(ConfigError, match=r"data.domains.quiz: s3://bucket/a//b: key .* empty"):
        load_config("smoke", overrides("s3://bucket/a//b", {}))


def test_the_curate_stage_reads_an_s3_uri_beside_a_store_key(s3_env, tmp_path):
    from modomodo.store import S3Store

    store = S3Store(s3_env.bucket, f"store/{tmp_path.name}")
    store.put_dir(chartqa_saved(tmp_path / "saved"), "datasets/chartqa")
    quiz = put(s3_env, f"{tmp_path.name}/raw/quiz.jsonl", quiz_jsonl(tmp_path / "quiz.jsonl"))
    cfg = load_config(
        "smoke", overrides(quiz, {"chartqa": {"store": "datasets/chartqa", "layout": "chartqa"}})
    )
    report = curate_stage(cfg, tmp_path / "out", store=store, cache_dir=tmp_path / "cache")
    assert report.rows["quiz"] == {"train": 3, "test": 0} and report.rows["chartqa"] == {
        "train": 0,
        "test": 2,
    }
    assert (tmp_path / "cache" / "datasets" / "chartqa" / "state.json").is_file()
    assert len(list((tmp_path / "cache" / CACHE_FOLDER / s3_env.bucket).glob("quiz.jsonl-*/quiz.jsonl"))) == 1
