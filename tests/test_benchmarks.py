"""The benchmark scripts' own logic (the scripts themselves run real training: see benchmarks/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sensitivity():
    spec = importlib.util.spec_from_file_location(
        "mixture_sensitivity", ROOT / "benchmarks" / "mixture_sensitivity.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verdict_separates_mixtures_only_beyond_seed_noise(sensitivity):
    apart = sensitivity.verdict({"a": [0.10, 0.11, 0.12], "b": [0.20, 0.21, 0.19], "c": [0.30, 0.31, 0.29]})
    assert "ratio 19.0" in apart and "the mixtures differ beyond seed noise" in apart

    # the GPU run of 2026-11-26: a ratio of 2.6 that is not significant with three seeds
    measured = {
        "only-det": [0.1006, 0.1006, 0.0782], "only-ref": [0.0838, 0.0559, 0.0838],
        "only-geo": [0.1061, 0.0838, 0.0950], "only-spatial": [0.0726, 0.0894, 0.1173],
        "only-sci": [0.0726, 0.0838, 0.0838], "uniform": [0.1006, 0.1006, 0.1564],
    }  # fmt: skip
    close = sensitivity.verdict(measured)
    assert "ratio 2." in close and "NOT told apart (needs p < 0.01)" in close


def test_verdict_without_seed_noise_gives_no_verdict(sensitivity):
    assert sensitivity.verdict({"a": [0.1], "b": [0.2]}).endswith("no verdict")
    assert sensitivity.verdict({"a": [0.1, 0.1], "b": [0.1, 0.1]}).endswith("no verdict")


def test_a_workdir_holds_the_results_of_one_setup_only(sensitivity, tmp_path):
    setup = {"preset": "smoke", "overrides": [], "suite": "synthetic-v3"}
    (tmp_path / "base").mkdir()  # a base trained elsewhere may be put in first
    sensitivity.claim_workdir(tmp_path, setup)
    sensitivity.claim_workdir(tmp_path, setup)  # the same setup resumes
    with pytest.raises(SystemExit, match="holds results of another setup"):
        sensitivity.claim_workdir(tmp_path, {**setup, "overrides": ["train.lr=1e-4"]})
    with pytest.raises(SystemExit, match="use a fresh --workdir"):
        sensitivity.claim_workdir(tmp_path, {**setup, "suite": "synthetic-v4"})


def test_answer_forms_and_the_share_written_in_the_solutions_form(sensitivity, tmp_path):
    form = sensitivity.answer_form
    assert [form("B"), form(" 3 "), form("green"), form("No Objects"), form(None), form("2 col 3")] == [
        "letter", "number", "word", "box", "other", "other",
    ]  # fmt: skip
    assert form("[{'Position': [0, 0, 28, 28], 'Confidence': 1}]") == "box"
    rows = [
        {"benchmark": "chart", "answer": "A", "solution": "3"},  # a letter for a number: wrong form
        {"benchmark": "chart", "answer": "2", "solution": "3"},  # right form, wrong value
        {"benchmark": "mixmc", "answer": "C", "solution": "B"},
        {"benchmark": "sci", "answer": "red", "solution": "A"},  # in-domain: not counted
    ]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert sensitivity.form_rate(samples, {"chart", "mixmc"}) == pytest.approx(2 / 3)
