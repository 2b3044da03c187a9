"""The main job end to end: ``modomodo run`` runs the mixture-search pipeline with kfp's local runner
on a tiny config, with a real SeaweedFS as the artifact store and a real Pushgateway scraped by a
real Prometheus. Every wave runs: seed pilots, the heuristic wave (with a replicate) and an explore
round, then the final run. Trains for real (a few minutes on two cores)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid

import pytest
import typer
from typer.testing import CliRunner

from modomodo.cli.pipelines import register
from modomodo.components.runtime import STORE_REFERENCE
from modomodo.store import ArtifactStore

pytestmark = pytest.mark.slow

DOMAINS = ("det", "geo", "sci")
TINY = [
    "data.domains={det: {n_train: 16, rewards: [{name: format}, {name: iou_visual_rft, weight: 2}]},"
    " geo: {n_train: 16, rewards: [{name: format}, {name: accuracy, weight: 2}]},"
    " sci: {n_train: 16, rewards: [{name: format}, {name: accuracy, weight: 2}]}}",
    "data.benchmark_scale=0.02",
    "policy.hidden_size=64",
    "policy.num_layers=1",
    "policy.vision_depth=1",
    "sft.steps=4",
    "sft.batch_size=8",
    "train.steps=2",
    "train.prompts_per_step=1",
    "train.num_generations=2",
    "train.max_completion_length=8",
    "train.checkpoint_every=1",
    "eval.max_new_tokens=8",
    "eval.batch_size=16",
    "search.trials=20",
    # Norm reads exclude-one runs; asked twice, the second equals the first, so it must train as a
    # replicate with the next seed (the tiny model's scores decide whether the first already equals
    # a seed mixture, e.g. uniform when every exclude-one run scores the same).
    "search.seeds=[single, exclude_one, uniform]",
    "search.heuristics=[norm, norm]",
    "search.rounds=1",
    "search.pilots_per_round=1",
]
SEED = 42
"""The smoke preset's ``train.seed``: replicate ``k`` of a mixture trains with ``SEED + k``."""
SEED_PILOTS = len(DOMAINS) + len(DOMAINS) + 1  # single, exclude-one, uniform
PILOTS = SEED_PILOTS + 2 + 1  # + the heuristic wave + one explore round of one pilot


def query(prometheus: str, promql: str) -> list[dict]:
    """The last value in the past hour of each series of ``promql``: the pipeline's end deletes its
    Pushgateway groups, so the present holds none of its runs' series."""
    last = f"last_over_time(({promql})[1h:1s])"
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': last})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


def wait_for_series(prometheus: str, promql: str, count: int, timeout_s: float = 30.0) -> list[dict]:
    """The series of ``promql`` once at least ``count`` exist (Prometheus scrapes every second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = query(prometheus, promql)
        if len(result) >= count or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.fixture(scope="module")
def main_job(s3_server, pushgateway, prometheus, tmp_path_factory):
    """Run the main job once, scraped by Prometheus while it runs (its end deletes its
    Pushgateway groups); the tests below read what it left behind."""
    output = tmp_path_factory.mktemp("run")
    # A unique experiment name prefixes every run id, so queries see this run's series only.
    experiment = f"e2e-{uuid.uuid4().hex[:8]}"
    store_uri = f"s3://{s3_server.bucket}/{experiment}"
    env = {
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "MODOMODO_S3_ENDPOINT": s3_server.endpoint,
        "MODOMODO_PUSHGATEWAY_GRACE": "0",  # Prometheus scrapes every second here
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)  # the local runner's step processes inherit the environment
        app = typer.Typer()
        register(app)
        overrides = [arg for item in [*TINY, f"name={experiment}"] for arg in ("--set", item)]
        result = CliRunner().invoke(
            app,
            [
                "run",
                "--output",
                str(output),
                "--store",
                store_uri,
                "--pushgateway",
                pushgateway,
                "--profile-prompts",
                "2",
                *overrides,
            ],
        )
        assert result.exit_code == 0, result.output[-5000:]
        store = ArtifactStore.from_uri(store_uri)
        keys = store.list_artifacts()
        manifests = {key: store.read_manifest(key) for key in keys}
    return {"output": output, "cli": result.output, "manifests": manifests, "experiment": experiment}


def test_the_report_lands_in_the_output_folder(main_job):
    output = main_job["output"]
    document = json.loads((output / "report.json").read_text())
    assert (output / "report.html").read_text().startswith("<!doctype html>")
    pilots = document["pilots"]
    assert len(pilots) == PILOTS
    assert [c["label"] for c in document["comparison"]][:2] == ["base", "uniform"]
    summary = document["summary"]
    chosen = summary["chosen"]
    assert set(chosen["mixture"]) == set(DOMAINS) and sum(chosen["mixture"].values()) == pytest.approx(1)
    assert chosen["mixture"] == pytest.approx(document["proposals"][0]["mixture"])
    assert summary["uniform"]["delta"] == pytest.approx(
        chosen["scores"]["out_score"] - summary["uniform"]["scores"]["out_score"]
    )
    assert "quadratic" in document["surrogate"]["cv"]
    assert set(document["pass_rates"]["pass_rates"]) == set(DOMAINS)


def test_the_printed_summary_names_the_chosen_mixture_against_uniform_and_base(main_job):
    document = json.loads((main_job["output"] / "report.json").read_text())
    label = ", ".join(
        f"{d}={w:.2f}" for d, w in sorted(document["summary"]["chosen"]["mixture"].items()) if w > 0
    )
    cli = main_job["cli"]
    assert f"chosen mixture: {label}" in cli
    for row in ("chosen", "uniform", "base"):
        assert any(line.strip(" │|").startswith(row) for line in cli.splitlines()), row
    assert str(main_job["output"] / "report.html") in cli


def test_checkpoints_models_shards_and_the_report_are_in_s3(main_job):
    manifests = main_job["manifests"]
    keys = set(manifests)
    document = json.loads((main_job["output"] / "report.json").read_text())
    runs = [p["run_id"] for p in document["pilots"]] + [document["summary"]["chosen"]["run_id"]]
    for run in runs:
        assert f"runs/{run}/model" in keys
        assert f"runs/{run}/checkpoints/step-00000002" in keys
    assert sum(key.startswith("data/") for key in keys) == 1
    (report,) = [key for key in keys if key.startswith("reports/")]
    assert {f.path for f in manifests[report].files} == {"report.html", "report.json"}
    # A model in the store says which run and mixture made it.
    chosen = document["summary"]["chosen"]
    assert manifests[f"runs/{chosen['run_id']}/model"].metadata["mixture"] == pytest.approx(chosen["mixture"])
    # Stored once: the trained models' artifacts in the pipeline root only refer to the store.
    root = main_job["output"] / "pipeline-root"
    references = [json.loads(p.read_text()) for p in root.rglob(STORE_REFERENCE)]
    assert sorted(r["key"] for r in references) == sorted(f"runs/{run}/model" for run in runs)
    assert not [p for p in root.rglob("model.safetensors") if "train-and-evaluate" in str(p)]


def test_every_step_pushed_metrics_that_prometheus_can_query(main_job, prometheus):
    document = json.loads((main_job["output"] / "report.json").read_text())
    trained = {p["run_id"] for p in document["pilots"]} | {document["summary"]["chosen"]["run_id"]}
    ours = f'run=~"{main_job["experiment"]}-.*"'
    succeeded = 'modomodo_stage_last_success_timestamp_seconds{stage="%s", ' + ours + "}"
    train = wait_for_series(prometheus, succeeded % "train", len(trained))
    assert {s["metric"]["run"] for s in train} == trained
    evaluated = {
        s["metric"]["run"]
        for s in wait_for_series(prometheus, f"modomodo_eval_out_score{{{ours}}}", len(trained) + 1)
    }
    base = {run for run in evaluated if run.startswith(f"{main_job['experiment']}-base-")}
    assert len(base) == 1 and evaluated == trained | base
    # One fit per wave (seed, heuristic, explore round), one search per round plus the final one.
    for stage, count in (("curate", 1), ("warmstart", 1), ("rollout", 1), ("surrogate", 3), ("search", 2)):
        assert len(wait_for_series(prometheus, succeeded % stage, count)) == count, f"{stage} metrics"
    # The report's run label is the pipeline run, which names the report's folder in the store.
    (report,) = [key for key in main_job["manifests"] if key.startswith("reports/")]
    pipeline_run = report.removeprefix("reports/")
    assert wait_for_series(
        prometheus,
        f'modomodo_stage_last_success_timestamp_seconds{{stage="report", run="{pipeline_run}"}}',
        1,
    )
    # Mixture labels: a single-domain pilot's training series say which domain it trained on.
    (single,) = [p for p in document["pilots"] if p["w_geo"] == 1.0]
    weights = query(prometheus, f'modomodo_mixture_weight{{run="{single["run_id"]}"}}')
    assert {s["metric"]["domain"]: float(s["value"][1]) for s in weights} == {
        "det": 0.0,
        "geo": 1.0,
        "sci": 0.0,
    }
    assert {s["metric"]["mixture"] for s in weights} == {"geo=1.00"}
    pass_rates = wait_for_series(prometheus, f"modomodo_rollout_pass_rate{{{ours}}}", len(DOMAINS))
    assert {s["metric"]["domain"] for s in pass_rates} == set(DOMAINS)
    # The explore round's search and the final one, each with the configured trials.
    trials = wait_for_series(prometheus, f"modomodo_mixture_search_trials{{{ours}}}", 2)
    assert [float(t["value"][1]) for t in trials] == [20, 20]


def _mixture(pilot: dict) -> tuple[float, ...]:
    return tuple(pilot[f"w_{d}"] for d in DOMAINS)


def test_every_wave_ran_its_pilots_with_their_kinds_and_seeds(main_job):
    """Seed pilots, then the heuristic wave, then the explore round, in the records' order; a pilot
    that repeats an earlier mixture is a replicate trained with the next seed."""
    pilots = json.loads((main_job["output"] / "report.json").read_text())["pilots"]
    experiment = main_job["experiment"]
    kinds = [p["kind"] for p in pilots]
    assert kinds == ["seed"] * SEED_PILOTS + ["heuristic"] * 2 + ["pilot"], kinds
    seeds, heuristics, (explore,) = pilots[:SEED_PILOTS], pilots[SEED_PILOTS:-1], pilots[-1:]
    assert all(p["seed"] == SEED for p in seeds)
    third = round(1 / 3, 6)
    assert sorted(tuple(round(w, 6) for w in _mixture(p)) for p in seeds) == sorted(
        [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0)]
        + [(third, third, third)]
    )
    # Replicate k of a mixture trains with seed SEED + k: the first Norm counts the seed runs of its
    # mixture (if any), the second one more (a wave's records come in no fixed order).
    first, second = sorted(heuristics, key=lambda p: p["seed"])
    assert all(p["run_id"].startswith(f"{experiment}-heuristic-norm-") for p in heuristics)
    assert _mixture(second) == pytest.approx(_mixture(first)), "norm twice is one mixture"
    replicate = sum(_mixture(p) == pytest.approx(_mixture(first), abs=1e-6) for p in seeds)
    assert (first["seed"], second["seed"]) == (SEED + replicate, SEED + replicate + 1)
    assert second["run_id"] != first["run_id"], "a replicate is its own run"
    assert explore["run_id"].startswith(f"{experiment}-round1-0-") and explore["seed"] == SEED
    assert sum(_mixture(explore)) == pytest.approx(1)
    assert len({p["run_id"] for p in pilots}) == PILOTS
