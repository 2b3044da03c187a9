from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modomodo.mixture.records import RunRecords, RunRecordsError, load_run_records, make_run_record
from modomodo.mixture.simplex import Mixture

PAPER_DOMAINS = ["coco", "lisa", "geoqav", "sat", "scienceqa"]


def _table(domains: list[str], rows: int = 4) -> pd.DataFrame:
    weights = np.random.default_rng(0).dirichlet(np.ones(len(domains)), size=rows)
    frame = pd.DataFrame(weights, columns=[f"w_{d}" for d in domains])
    frame.insert(0, "run_id", [f"run-{i}" for i in range(rows)])
    frame["in_score"] = np.linspace(0.4, 0.5, rows)
    frame["out_score"] = np.linspace(0.45, 0.52, rows)
    frame["chartqa_score"] = 0.3
    frame["seed"] = 42
    frame["kind"] = "pilot"
    return frame


@pytest.mark.parametrize("domains", [PAPER_DOMAINS, ["ref", "sat"], ["count", "color", "shape"]])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_any_domain_names_load_from_csv_and_parquet(tmp_path: Path, domains: list[str], suffix: str) -> None:
    frame = _table(domains)
    path = tmp_path / f"runs{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    records = load_run_records(path)
    assert records.domains == tuple(domains)
    assert np.allclose(records.weights(), frame[[f"w_{d}" for d in domains]].to_numpy())
    assert records.score_columns == ("in_score", "out_score", "chartqa_score")
    assert records.frame["seed"].tolist() == [42] * 4  # metadata is kept
    assert records.mixtures()[0] == Mixture.from_vector(
        domains, frame.iloc[0][[f"w_{d}" for d in domains]].to_numpy(float)
    )


def test_domains_option_sets_order_and_rejects_unknown_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    _table(["a", "b", "c"]).to_csv(path, index=False)
    assert load_run_records(path, ["c", "a", "b"]).domains == ("c", "a", "b")
    with pytest.raises(RunRecordsError, match=r"unknown domains \['c'\]"):
        load_run_records(path, ["a", "b"])
    with pytest.raises(RunRecordsError, match=r"missing domains \['d'\]"):
        load_run_records(path, ["a", "b", "c", "d"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(w_a=f.w_a + 0.1), r"sum to 1 within 1e-06.*'run-0' \(sum 1.1"),
        (lambda f: f.assign(w_a=-f.w_b, w_c=f.w_c + 2 * f.w_b), r"negative weights in runs 'run-0' \(a=-"),
        (lambda f: f.assign(out_score=[0.1, np.nan, 0.2, 0.3]), r"'out_score' is NaN in runs run-1"),
        (lambda f: f.assign(run_id=["x", "y", "x", "z"]), r"duplicate run ids: x"),
        (lambda f: f.drop(columns="run_id"), r"missing the 'run_id' column"),
        (lambda f: f.drop(columns=["w_b", "w_c"]), r"at least two w_<domain>"),
        (lambda f: f.assign(kind="final"), r"'kind' has values \['final'\]"),
        (lambda f: f.assign(in_score="high"), r"score columns .* must be numeric"),
    ],
)
def test_validation_names_the_problem_and_the_run(change, message: str) -> None:  # noqa: ANN001
    with pytest.raises(RunRecordsError, match=message):
        RunRecords.from_frame(change(_table(["a", "b", "c"])))


def test_weights_within_tolerance_are_accepted() -> None:
    frame = _table(["a", "b"])
    frame["w_a"] += 5e-7
    assert len(RunRecords.from_frame(frame)) == 4


def test_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RunRecordsError, match="not found"):
        load_run_records(tmp_path / "absent.csv")
    with pytest.raises(RunRecordsError, match=r"\.csv or \.parquet"):
        load_run_records(tmp_path / "runs.xlsx")
    bad = tmp_path / "bad.csv"
    _table(["a", "b"]).assign(out_score=np.nan).to_csv(bad, index=False)
    with pytest.raises(RunRecordsError, match=r"bad\.csv: score column 'out_score' is NaN"):
        load_run_records(bad)


def test_scores_of_a_target_column() -> None:
    records = RunRecords.from_frame(_table(["a", "b"]))
    assert records.scores("out_score")[0] == pytest.approx(0.45)
    with pytest.raises(RunRecordsError, match="no column 'accuracy'.*score columns"):
        records.scores("accuracy")


def test_pipeline_appends_records_and_round_trips(tmp_path: Path) -> None:
    records = RunRecords.from_frame(_table(["a", "b", "c"]))
    row = make_run_record(
        "final-1",
        Mixture({"a": 0.5, "c": 0.5}),
        {"in_score": 0.6, "out_score": 0.55, "chartqa_score": 0.4},
        {"seed": 7, "kind": "model"},
    )
    grown = records.append(row)
    assert len(grown) == 5 and len(records) == 4
    assert grown.mixtures()[-1] == Mixture({"a": 0.5, "b": 0.0, "c": 0.5})
    for suffix in (".csv", ".parquet"):
        back = load_run_records(grown.write(tmp_path / f"runs{suffix}"))
        assert back.run_ids == grown.run_ids
        assert np.allclose(back.weights(), grown.weights())
        assert back.frame["kind"].tolist()[-1] == "model"
    assert (
        grown.fingerprint() == RunRecords.from_frame(grown.to_frame()).fingerprint() != records.fingerprint()
    )


def test_make_run_record_rejects_bad_names_and_values() -> None:
    with pytest.raises(RunRecordsError, match="end in '_score'"):
        make_run_record("r", {"a": 1.0}, {"accuracy": 0.5})
    with pytest.raises(RunRecordsError, match="is nan"):
        make_run_record("r", {"a": 1.0}, {"out_score": float("nan")})
    with pytest.raises(RunRecordsError, match="clashes"):
        make_run_record("r", {"a": 1.0}, {"out_score": 0.5}, {"w_a": 1})
