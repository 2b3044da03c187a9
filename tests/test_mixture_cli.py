from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modomodo.cli.mixture import app
from modomodo.mixture.records import RunRecords, make_run_record
from modomodo.mixture.seeds import random_pilots, seed_mixtures
from modomodo.mixture.simplex import Mixture

DOMAINS = ["coco", "lisa", "geoqav", "sat", "scienceqa"]
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def _score(w: np.ndarray) -> float:
    return float(0.45 + 0.05 * w[1] + 0.2 * w[0] * w[3] + 0.15 * w[2] * w[4] - 0.1 * w[3] ** 2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paper's 11 seed runs plus 14 random pilots over its five datasets, as Parquet."""
    rng = np.random.default_rng(0)
    planned = seed_mixtures(DOMAINS) + random_pilots(DOMAINS, 14, seed=0)
    rows = []
    for p in planned:
        w = p.mixture.vector(DOMAINS)
        scores = {
            "in_score": _score(w[::-1]) + rng.normal(0, 0.0005),
            "out_score": _score(w) + rng.normal(0, 0.0005),
        }
        rows.append(make_run_record(p.name, p.mixture, scores, {"kind": p.kind, "seed": 42}))
    return RunRecords.from_rows(rows).write(tmp_path_factory.mktemp("runs") / "runs.parquet")


def _invoke(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "-" in args else result


def test_seeds_lists_the_paper_seeds_and_reproducible_pilots() -> None:
    out = _invoke("seeds", "--domains", "a,b,c", "--random", "2", "--seed", "3", "--json", "-")
    assert [e["name"] for e in out] == [
        "single-a",
        "single-b",
        "single-c",
        "exclude-a",
        "exclude-b",
        "exclude-c",
        "uniform",
        "pilot-000",
        "pilot-001",
    ]
    assert out[3]["mixture"] == {"a": 0.0, "b": 0.5, "c": 0.5}
    assert (
        out[-2:] == _invoke("seeds", "--domains", "a,b,c", "--random", "2", "--seed", "3", "--json", "-")[-2:]
    )
    table = _invoke("seeds", "--domains", "a,b,c")
    assert "exclude-b" in table.stdout and "w_c" in table.stdout


def test_heuristics_table_and_json(runs: Path, tmp_path: Path) -> None:
    out = _invoke("heuristics", "--runs", str(runs), "--domains", ",".join(DOMAINS), "--json", "-")
    assert [h["name"] for h in out["heuristics"]] == ["Ain", "Aout", "Abal", "Coli", "Norm"]
    assert all(abs(sum(h["mixture"].values()) - 1) < 1e-9 for h in out["heuristics"])
    assert len(out["heuristics"][0]["runs"]) == 11  # the seed runs, not the pilots
    written = tmp_path / "h.json"
    result = _invoke("heuristics", "--runs", str(runs), "--json", str(written))
    assert "Norm" in result.stdout and json.loads(written.read_text())["heuristics"][4]["name"] == "Norm"


def test_fit_reports_cross_validation_and_writes_plots(runs: Path, tmp_path: Path) -> None:
    out = _invoke(
        "fit",
        "--runs",
        str(runs),
        "--target",
        "out_score",
        "--model",
        "quadratic",
        "--bootstrap",
        "8",
        "--plot",
        str(tmp_path),
        "--json",
        "-",
    )
    schemes = {cv["scheme"]: cv for cv in out["cross_validation"]}
    assert set(schemes) == {"5-fold", "leave-one-out"}
    assert schemes["leave-one-out"]["r2"] > 0.9 and len(schemes["leave-one-out"]["predicted"]) == 25
    assert out["fit"]["terms"] == 15 and "coco*sat" in out["fit"]["coefficients"]
    assert len(out["plots"]) == 3
    for path in out["plots"]:
        assert Path(path).read_bytes()[:8] == PNG
    table = _invoke("fit", "--runs", str(runs), "--model", "linear", "--bootstrap", "0")
    assert "leave-one-out" in table.stdout and "Spearman" in table.stdout


def test_fit_explains_too_few_runs(tmp_path: Path) -> None:
    rows = [
        make_run_record(f"r{i}", Mixture.from_vector(DOMAINS, w), {"out_score": 0.5 + 0.01 * i})
        for i, w in enumerate(np.eye(5))
    ]
    path = RunRecords.from_rows(rows).write(tmp_path / "few.csv")
    result = runner.invoke(app, ["fit", "--runs", str(path), "--model", "quadratic", "--ridge", "0"])
    assert result.exit_code == 2
    assert "quadratic needs at least 15 runs for 5 domains, got 5" in result.stderr


def test_propose_best_explore_and_paper(runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    common = (
        "--runs",
        str(runs),
        "--target",
        "out_score",
        "--trials",
        "40",
        "--storage",
        str(db),
        "--json",
        "-",
    )
    best = _invoke("propose", "--k", "4", *common)
    assert best["mode"] == "best" and len(best["proposals"]) == 4 and db.is_file()
    assert best["proposals"][0]["mean"] >= best["proposals"][-1]["mean"]
    assert all(p["lower"] <= p["upper"] for p in best["proposals"])
    assert _invoke("propose", "--k", "4", *common)["study_name"] == best["study_name"]  # resumed, same study
    explore = _invoke("propose", "--k", "3", "--explore", "--kappa", "2", *common)
    assert explore["mode"] == "explore" and explore["study_name"] != best["study_name"]
    assert all(p["acquisition"] == pytest.approx(p["mean"] + 2 * p["std"]) for p in explore["proposals"])
    paper = _invoke("propose", "--k", "2", "--paper-candidates", *common)
    assert paper["mode"] == "paper" and {p["source"] for p in paper["proposals"]} == {"gaussian"}
    table = _invoke(
        "propose", "--k", "2", "--runs", str(runs), "--trials", "10", "--storage", str(db), "--model", "gp"
    )
    assert "best mixtures to train" in table.stdout and "rerun to resume" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("propose", "--explore", "--paper-candidates"), "does not combine"),
        (("fit", "--model", "linear", "--ridge", "1"), "--ridge applies to the quadratic"),
        (("fit", "--model", "cubic"), "unknown surrogate 'cubic'"),
        (("fit", "--target", "accuracy"), "no column 'accuracy'"),
        (("heuristics", "--domains", "coco,lisa"), "unknown domains"),
    ],
)
def test_bad_requests_exit_2_with_a_message(runs: Path, args: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, [*args, "--runs", str(runs)])
    assert result.exit_code == 2 and message in result.stderr


def test_invalid_table_names_the_run(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("run_id,w_a,w_b,out_score\nr1,0.5,0.5,0.4\nr2,0.7,0.5,0.5\n")
    result = runner.invoke(app, ["fit", "--runs", str(path)])
    assert result.exit_code == 2 and "'r2' (sum 1.2)" in result.stderr


def test_fit_and_propose_take_the_presets_search_section(runs: Path, tmp_path: Path, monkeypatch) -> None:
    # The pipeline's defaults, not the commands' own: surrogate, trials and top_k come from the
    # preset's search section (with --set), and the study goes to study.db as the stage's does.
    import optuna

    monkeypatch.chdir(tmp_path)
    section = ("--set", "search.surrogate=linear", "--set", "search.trials=7", "--set", "search.top_k=2")
    out = _invoke("propose", "--runs", str(runs), *section, "--json", "-")
    assert out["model"] == "linear" and len(out["proposals"]) == 2
    study = optuna.load_study(study_name=out["study_name"], storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(study.trials) == study.user_attrs["enqueued"] + 7
    fitted = _invoke("fit", "--runs", str(runs), *section, "--bootstrap", "0", "--json", "-")
    assert fitted["fit"]["model"] == "linear"
    assert (
        _invoke("fit", "--runs", str(runs), "--set", "search.target=in_score", "--json", "-")["target"]
        == "in_score"
    )
    bad = runner.invoke(app, ["fit", "--runs", str(runs), "--set", "search.trials=0"])
    assert bad.exit_code == 2 and "search.trials: must be >= 1" in bad.stderr
