"""The curate stage on configured sources: a path source read through its published layout and
its preprocessing steps, each step's counts in ``curation.json``; benchmarks from paths curated as
test splits with their configured roles; a dataset named by a store key fetched from a real
SeaweedFS first. Small files written here in the published layouts; fast."""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modomodo.config import load_config
from modomodo.data.answers import parse_boxes
from modomodo.data.curate import REPORT_FILE, CurationError, CurationReport, read_curated
from modomodo.data.curated import load_curated
from modomodo.stages.curate import curate_stage

FORMAT_REWARDS = [{"name": "format"}, {"name": "accuracy"}]


def png(width: int, height: int, colour=(90, 90, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def lisa_jsonl(folder: Path) -> Path:
    """Three LISA rows (a 1000 x 500 image, boxes on the 0-1000 grid), one listing two questions."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (folder / f"img{i}.png").write_bytes(png(1000, 500, (40 * i, 10, 10)))
    rows = [
        {"image_path": "img0.png", "problem": ["the cup", "what holds coffee"], "solution": "(100,200),(500,600)"},
        {"image_path": "img1.png", "problem": "the dog", "solution": "<answer> (0,0),(1000,1000) </answer>"},
        {"image_path": "img2.png", "problem": "the cat", "solution": "(0,0),(1200,10)"},  # off the grid
    ]  # fmt: skip
    path = folder / "lisa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def geoqav_jsonl(folder: Path) -> Path:
    """Four GeoQAV rows: three multiple choice, one free-form answer the paper's filter drops."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fig.png").write_bytes(png(64, 64))
    problem = "Find the angle.\nA. 30\nB. 45\nC. 60"
    rows = [
        {"image_path": "fig.png", "problem": f"{problem} ({i})", "solution": f"<answer> {letter} </answer>"}
        for i, letter in enumerate("ABC")
    ] + [{"image_path": "fig.png", "problem": "How long is AB?", "solution": "<answer> 12 </answer>"}]
    path = folder / "geoqav.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def chartqa_parquet(path: Path, n: int) -> Path:
    table = pa.table(
        {
            "image": [{"bytes": png(80, 60, (i, 100, 100)), "path": None} for i in range(n)],
            "query": [f"What is bar {i}?" for i in range(n)],
            "label": [[str(10 * i)] for i in range(n)],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def config(tmp_path: Path, benchmarks: dict, *extra: str):
    domains = {
        "ref": {
            "source": str(lisa_jsonl(tmp_path / "lisa")),
            "layout": "lisa",
            "steps": [{"one_sample_per_question": {"seed": 1}}, {"resize_long_side": {"max_side": 100}}],
            "rewards": [{"name": "format"}, {"name": "iou_continuous"}],
        },
        "geo": {
            "source": str(geoqav_jsonl(tmp_path / "geo")),
            "layout": "geoqav",
            "steps": ["keep_multiple_choice"],
            "rewards": FORMAT_REWARDS,
        },
    }
    return load_config(
        "smoke", [f"data.domains={json.dumps(domains)}", f"data.benchmarks={json.dumps(benchmarks)}", *extra]
    )


def test_path_sources_go_through_their_layout_and_steps_and_the_report_counts_each_step(tmp_path):
    chart = chartqa_parquet(tmp_path / "chartqa" / "test.parquet", 5)
    cfg = config(
        tmp_path,
        {"chartqa": {"path": str(chart), "layout": "chartqa", "size": 3}, "sci": {}},
    )
    report = curate_stage(cfg, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / REPORT_FILE).read_text())
    assert saved["format"] == "modomodo-curation/2"
    assert saved["steps"]["ref"] == {
        "train": [
            {"step": "one_sample_per_question", "rows_in": 3, "rows_out": 4, "dropped": {},
             "changed": {"questions": 2, "rows_split": 1}, "errors": 0},
            # the off-grid row is an error record by then: passed on, and quarantined by curation
            {"step": "resize_long_side", "rows_in": 4, "rows_out": 4, "dropped": {},
             "changed": {"resized": 3}, "errors": 1},
        ]
    }  # fmt: skip
    assert saved["steps"]["geo"]["train"][0]["dropped"] == {"not_multiple_choice": 1}
    assert saved["steps"]["chartqa"]["test"][0] == {
        "step": "at_most", "rows_in": 5, "rows_out": 3, "dropped": {"not_sampled": 2}, "changed": {}, "errors": 0,
    }  # fmt: skip
    assert saved["steps"]["sci"] == {}
    assert report.rows["ref"] == {"train": 3, "test": 0}
    assert report.quarantined["ref"] == {"unreadable_row": 1}
    assert report.rows["geo"]["train"] == 3 and report.rows["chartqa"] == {"train": 0, "test": 3}

    ref = read_curated(tmp_path / "out", "ref", "train")
    cup = next(e for e in ref if e.problem == "the cup")
    # (100,200),(500,600) on the 0-1000 grid of a 1000 x 500 image, then shrunk to 100 x 50 px
    assert parse_boxes(cup.solution)[0].corners == pytest.approx((10, 10, 50, 30))
    assert cup.meta["resized_from"] == "1000x500" and Image.open(io.BytesIO(cup.image)).size == (100, 50)
    assert {e.solution for e in read_curated(tmp_path / "out", "geo", "train")} == {"A", "B", "C"}

    data = load_curated(tmp_path / "out")
    assert data.splits == {"chartqa": "out", "sci": "out"}, "sci is no training domain here"
    assert sorted(data.train) == ["geo", "ref"] and len(data.benchmarks["chartqa"]) == 3


def test_configured_roles_reach_the_stages_through_the_report(tmp_path):
    chart = chartqa_parquet(tmp_path / "chartqa.parquet", 2)
    lisa_test = lisa_jsonl(tmp_path / "lisa_test")
    cfg = config(
        tmp_path,
        {
            "chartqa": {"path": str(chart), "layout": "chartqa", "role": "in", "metric": "customary"},
            "lisa": {
                "path": str(lisa_test),
                "layout": "lisa_test",
                "domain": "ref",
                "steps": [{"one_sample_per_question": {"seed": 0}}],
            },
        },  # fmt: skip
    )
    curate_stage(cfg, tmp_path / "out")
    data = load_curated(tmp_path / "out")
    assert data.splits == {"chartqa": "in", "lisa": "in"}
    assert CurationReport.load(tmp_path / "out").benchmarks == {"chartqa": "in", "lisa": "in"}
    assert len(data.benchmarks["lisa"]) == 3  # four questions, the off-grid one quarantined
    assert cfg.benchmark_metrics() == {"chartqa": "relaxed_accuracy"}


def test_a_version_1_report_still_loads_with_the_suites_roles(tmp_path):
    cfg = load_config("smoke", ["data.benchmarks=[chart, ref]", "data.domains.det.n_train=2",
                                "data.domains.ref.n_train=2", "data.domains.geo.n_train=2",
                                "data.domains.spatial.n_train=2", "data.domains.sci.n_train=2",
                                "data.benchmarks.chart.size=2", "data.benchmarks.ref.size=2"])  # fmt: skip
    curate_stage(cfg, tmp_path / "out")
    path = tmp_path / "out" / REPORT_FILE
    old = json.loads(path.read_text())
    assert old["benchmarks"] == {"chart": "out", "ref": "in"}
    old["format"] = "modomodo-curation/1"
    del old["steps"], old["benchmarks"]
    path.write_text(json.dumps(old))
    assert load_curated(tmp_path / "out").splits == {"chart": "out", "ref": "in"}
    old["format"] = "modomodo-curation/9"
    path.write_text(json.dumps(old))
    with pytest.raises(CurationError, match="not a modomodo-curation/2 report"):
        load_curated(tmp_path / "out")


def test_a_step_that_cannot_run_stops_curation_naming_the_source_and_writes_nothing(tmp_path):
    cfg = config(tmp_path, {"chart": {}})
    cfg.data.domains["geo"].steps = [{"sample": {"size": 50}}]
    with pytest.raises(
        CurationError, match=r"source 'geo' \(.*geoqav.jsonl\): sample: size must be in \[1, 4\]"
    ):
        curate_stage(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_store_dataset_is_fetched_from_seaweedfs_and_curated(tmp_path, s3_server):
    from modomodo.store import S3Store

    store = S3Store(
        s3_server.bucket,
        f"sources/{tmp_path.name}",
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    features = datasets.Features(
        {"image": datasets.Image(), "query": datasets.Value("string"), "label": datasets.Value("string")}
    )
    folder = tmp_path / "upload"
    datasets.Dataset.from_dict(
        {"image": [png(50, 40), png(40, 50)], "query": ["a?", "b?"], "label": ["7", "8"]}, features=features
    ).save_to_disk(str(folder))
    store.put_dir(folder, "datasets/chartqa")
    cfg = config(tmp_path, {"chartqa": {"store": "datasets/chartqa", "layout": "chartqa"}})
    with pytest.raises(ValueError, match="a source names a store key, but the config sets no store"):
        curate_stage(cfg, tmp_path / "none")
    report = curate_stage(cfg, tmp_path / "out", store=store, cache_dir=tmp_path / "cache")
    assert report.rows["chartqa"] == {"train": 0, "test": 2}
    assert (tmp_path / "cache" / "datasets" / "chartqa" / "state.json").is_file()
    assert {e.solution for e in read_curated(tmp_path / "out", "chartqa", "test")} == {"7", "8"}


def test_the_evaluate_stage_scores_each_benchmark_with_its_own_metric_and_role(tmp_path):
    from tiny import build_test_model

    from modomodo.stages.evaluate import evaluate_stage

    chart = chartqa_parquet(tmp_path / "chartqa.parquet", 3)
    cfg = config(
        tmp_path,
        {"chartqa": {"path": str(chart), "layout": "chartqa", "metric": "customary"}, "chart": {"size": 2}},
        "eval.max_new_tokens=4",
    )
    curate_stage(cfg, tmp_path / "data")
    data = load_curated(tmp_path / "data")
    model = build_test_model(tmp_path / "tiny", [e for ex in data.benchmarks.values() for e in ex])
    result = evaluate_stage(cfg, tmp_path / "data", model, tmp_path / "eval")
    scores = {s.benchmark: (s.split, s.n, s.metric) for s in result.scores}
    assert scores == {"chartqa": ("out", 3, "relaxed_accuracy"), "chart": ("out", 2, "exact_match")}


def test_the_cli_curates_configured_sources_and_prints_each_steps_rows(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from modomodo.cli import app
    from modomodo.cli.common import console

    monkeypatch.setattr(console, "width", 200)  # the table's cells unwrapped, whatever the terminal

    chart = chartqa_parquet(tmp_path / "chartqa.parquet", 4)
    lisa = lisa_jsonl(tmp_path / "lisa")
    domains = {"ref": {"source": str(lisa), "layout": "lisa", "steps": ["one_sample_per_question"],
                       "rewards": [{"name": "format"}, {"name": "iou_continuous"}]}}  # fmt: skip
    benchmarks = {"chartqa": {"path": str(chart), "layout": "chartqa", "size": 2}}
    result = CliRunner().invoke(
        app,
        ["data", "curate", "--out", str(tmp_path / "out"), "--set", f"data.domains={json.dumps(domains)}",
         "--set", f"data.benchmarks={json.dumps(benchmarks)}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "one_sample_per_question 3->4" in text and "at_most 4->2" in text
