"""The paper's heuristics against values computed by hand (arithmetic in the comments)."""

from __future__ import annotations

import pytest

from modomodo.mixture.heuristics import (
    HEURISTICS,
    HeuristicError,
    alpha_mixture,
    coli_mixture,
    compute_heuristics,
    norm_mixture,
)
from modomodo.mixture.records import RunRecords, make_run_record

# Seed runs over domains a, b, c with (in_score, out_score), plus one pilot every heuristic ignores.
RUNS = [
    ("single-a", {"a": 1.0}, 0.2, 0.3),
    ("single-b", {"b": 1.0}, 0.4, 0.1),
    ("single-c", {"c": 1.0}, 0.8, 0.2),
    ("exclude-a", {"b": 0.5, "c": 0.5}, 0.5, 0.4),
    ("exclude-b", {"a": 0.5, "c": 0.5}, 0.3, 0.6),
    ("exclude-c", {"a": 0.5, "b": 0.5}, 0.7, 0.5),
    ("uniform", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 0.9, 0.8),
    ("pilot", {"a": 0.3, "b": 0.5, "c": 0.2}, 1.0, 1.0),
]


def _records(runs: list[tuple[str, dict[str, float], float, float]] = RUNS) -> RunRecords:
    return RunRecords.from_rows(
        [
            make_run_record(
                name, {"a": 0.0, "b": 0.0, "c": 0.0} | mix, {"in_score": s_in, "out_score": s_out}
            )
            for name, mix, s_in, s_out in runs
        ]
    )


def _weights(result) -> list[float]:  # noqa: ANN001
    return result.mixture.vector(["a", "b", "c"]).tolist()


# Algorithm 1 with alpha_single = 0.5 (single runs' scores halved), summing each run into the
# domains it trains on:
#   S_in  a = .5*.2 + .3 (excl-b) + .7 (excl-c) + .9 = 2.0
#         b = .5*.4 + .5 (excl-a) + .7 (excl-c) + .9 = 2.3
#         c = .5*.8 + .5 (excl-a) + .3 (excl-b) + .9 = 2.1   -> min-max [0, 1, 1/3]
#   S_out a = .5*.3 + .6 + .5 + .8 = 2.05
#         b = .5*.1 + .4 + .5 + .8 = 1.75
#         c = .5*.2 + .4 + .6 + .8 = 1.90                   -> min-max [1, 0, 1/2]
@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        (1.0, [0.0, 0.75, 0.25]),  # Ain: [0, 1, 1/3] / (4/3)
        (0.0, [2 / 3, 0.0, 1 / 3]),  # Aout: [1, 0, 1/2] / (3/2)
        (0.5, [6 / 17, 6 / 17, 5 / 17]),  # Abal: [1/2, 1/2, 5/12] / (17/12)
    ],
)
def test_alpha_family(alpha: float, expected: list[float]) -> None:
    result = alpha_mixture(_records(), alpha, alpha_single=0.5)
    assert _weights(result) == pytest.approx(expected)
    assert "pilot" not in result.runs and len(result.runs) == 7


def test_alpha_single_discounts_single_domain_runs() -> None:
    # alpha_single = 1: S_in = [2.1, 2.5, 2.5] -> min-max [0, 1, 1] -> Ain = [0, 1/2, 1/2].
    assert _weights(alpha_mixture(_records(), 1.0, alpha_single=1.0)) == pytest.approx([0.0, 0.5, 0.5])


# Algorithm 2 on the 7 seed runs: every domain is in 4 runs and every pair in 2, so
# X'X + lambda I = (2 + lambda) I + 2 J with J the all-ones matrix, whose inverse is
# (I - 2 J / (2 + lambda + 3 * 2)) / (2 + lambda). With lambda = 0.001, X'y = [2.2, 1.8, 2.0]:
#   beta_i = (X'y_i - 2 * 6.0 / 8.001) / 2.001,  VIF_i = (1 - 2 / 8.001) / 2.001
#   beta_i / VIF_i = (8.001 X'y_i - 12) / 6.001 = [5.6022, 2.4018, 4.002] / 6.001
def test_coli() -> None:
    result = coli_mixture(_records())
    assert _weights(result) == pytest.approx([5.6022 / 12.006, 2.4018 / 12.006, 4.002 / 12.006])


def test_coli_two_domains() -> None:
    # X = [[1,0],[0,1],[1,1]], y = [.4,.6,.7]; X'X + lambda I = [[2.001, 1], [1, 2.001]], det 3.004001
    # beta = [2.001*1.1 - 1.3, 2.001*1.3 - 1.1] / det, VIF = 2.001 / det -> w ∝ [0.9011, 1.5013]
    runs = [
        ("single-a", {"a": 1.0}, 0.0, 0.4),
        ("single-b", {"b": 1.0}, 0.0, 0.6),
        ("uniform", {"a": 0.5, "b": 0.5}, 0.0, 0.7),
    ]
    records = RunRecords.from_rows(
        [make_run_record(n, {"a": 0.0, "b": 0.0} | m, {"out_score": o}) for n, m, _, o in runs]
    )
    assert coli_mixture(records).mixture.vector(["a", "b"]).tolist() == pytest.approx(
        [0.9011 / 2.4024, 1.5013 / 2.4024]
    )


# Algorithm 3: exclude-one Out-Scores a: .4, b: .6, c: .5 -> min-max [0, 1, .5]
#   -> 0.2 - 0.1 * [0, 1, .5] = [.2, .1, .15] -> / .45
def test_norm() -> None:
    result = norm_mixture(_records())
    assert _weights(result) == pytest.approx([4 / 9, 2 / 9, 3 / 9])
    assert set(result.runs) == {"exclude-a", "exclude-b", "exclude-c"}


def test_norm_needs_every_exclude_one_run() -> None:
    with pytest.raises(HeuristicError, match=r"none leaves out \['b'\]"):
        norm_mixture(_records([r for r in RUNS if r[0] != "exclude-b"]))


def test_coli_needs_separating_recipes() -> None:
    with pytest.raises(HeuristicError, match="rank 3.*give rank 2"):
        coli_mixture(_records([r for r in RUNS if r[0] in ("single-a", "uniform")]))


def test_alpha_needs_seed_runs_and_its_score_columns() -> None:
    with pytest.raises(HeuristicError, match="needs seed runs"):
        alpha_mixture(_records([r for r in RUNS if r[0] == "pilot"]), 0.5)
    out_only = RunRecords.from_frame(_records().to_frame().drop(columns="in_score"))
    with pytest.raises(HeuristicError, match="Ain needs the score column 'in_score'"):
        HEURISTICS["ain"](out_only)
    assert _weights(alpha_mixture(out_only, 0.0, alpha_single=0.5)) == pytest.approx([2 / 3, 0.0, 1 / 3])
    with pytest.raises(HeuristicError, match=r"no seed run trains on \['c'\]"):
        alpha_mixture(_records([r for r in RUNS if r[0] in ("single-a", "single-b", "exclude-c")]), 0.5)


def test_compute_heuristics_reports_the_ones_it_could_not_compute() -> None:
    records = _records([r for r in RUNS if not r[0].startswith("exclude")])
    results, failures = compute_heuristics(records)
    assert [r.name for r in results] == ["Ain", "Aout", "Abal", "Coli"]
    assert list(failures) == ["norm"] and "exclude-one" in failures["norm"]
    with pytest.raises(HeuristicError, match="unknown heuristic"):
        compute_heuristics(records, ["best"])
