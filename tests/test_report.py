"""The experiment report: its JSON facts, its HTML content, and the page as a reader sees it in
headless Chromium (every plot loaded, nothing cut off)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modomodo import stages
from modomodo.config import load_config
from modomodo.mixture import pilots as plans
from modomodo.mixture.seeds import random_pilots
from modomodo.report import Contender, ReportData, ReportError, compare
from modomodo.report_page import build_report
from modomodo.stages.curate import benchmark_names

CFG = load_config("smoke", ["search.trials=25", "search.seeds=[single, exclude_one, uniform]"])
DOMAINS = list(CFG.data.domains)
BENCHMARKS = benchmark_names(CFG)
CHROMIUM = "/usr/bin/chromium"


def scores_of(w: np.ndarray) -> dict[str, float]:
    """Score columns of a run on mixture ``w``: a smooth function of the weights."""
    base = float(np.linspace(0.1, 0.5, len(w)) @ w + 0.8 * w[0] * w[1])
    scores = {f"{b}_score": base * (1 + 0.1 * i) / 2 for i, b in enumerate(BENCHMARKS)}
    return {**scores, "in_score": base, "out_score": base / 2}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A report built the way the pipeline builds it: records -> surrogate -> search -> report."""
    root = tmp_path_factory.mktemp("report")
    pilots = plans.seed_pilots(CFG) + [
        plans.pilot_item(p.name, p.mixture, p.kind) for p in random_pilots(DOMAINS, 5, seed=0)
    ]
    rows = []
    for pilot in pilots:
        w = np.array([pilot["mixture"][d] for d in DOMAINS])
        run = {
            "run_id": f"smoke-{pilot['run']}-0123456789",
            "mixture": pilot["mixture"],
            "kind": pilot["kind"],
            "seed": 42,
            "steps": 60,
        }
        rows.append(plans.run_record(run, scores_of(w)))
    records = plans.load_records(CFG, rows)
    records.write(root / "records" / "records.csv")
    stages.fit_surrogate_stage(CFG, records, root / "surrogate", run_id="t")
    found = stages.search_stage(CFG, records, root / "proposals", mode="best", k=3, storage=None, run_id="t")
    chosen = found.proposals[0].mixture.to_dict()
    (root / "profile").mkdir()
    (root / "profile" / "pass_rates.json").write_text(
        json.dumps(
            {
                "pass_rates": {d: 0.1 * i for i, d in enumerate(DOMAINS)},
                "zero_signal_per_domain": {d: i for i, d in enumerate(DOMAINS)},
                "num_generations": 4,
                "definitions": {"pass": "a sample passes when its task reward part is >= 0.5"},
            }
        )
    )
    stages.report_stage(
        CFG,
        root / "out",
        run_id="t",
        base_scores=scores_of(np.full(len(DOMAINS), 1 / len(DOMAINS))) | {"out_score": 0.01},
        final_run={
            "run_id": "smoke-chosen-0123456789",
            "mixture": chosen,
            "kind": "model",
            "seed": 42,
            "steps": 60,
        },
        final_scores=scores_of(np.array([chosen[d] for d in DOMAINS])),
        records_csv=root / "records" / "records.csv",
        surrogate_dir=root / "surrogate",
        search_dir=root / "proposals",
        profile_dir=root / "profile",
    )
    return root / "out"


def test_report_json_is_strict_and_names_the_chosen_mixture_against_uniform_and_base(report_dir):
    def no_nan(name):
        raise AssertionError(f"{name} in report.json")

    document = json.loads((report_dir / "report.json").read_text(), parse_constant=no_nan)
    labels = [c["label"] for c in document["comparison"]]
    assert (
        labels[0] == "base"
        and labels[1] == "uniform"
        and labels[2].startswith("best pilot (")
        and labels[3] == "chosen"
    )
    summary = document["summary"]
    chosen, uniform = summary["chosen"], summary["uniform"]
    assert summary["target"] == "out_score"
    assert uniform["mixture"] == pytest.approx({d: 0.2 for d in DOMAINS})
    assert summary["uniform"]["delta"] == pytest.approx(
        chosen["scores"]["out_score"] - uniform["scores"]["out_score"]
    )
    assert summary["base"]["delta"] == pytest.approx(chosen["scores"]["out_score"] - 0.01)
    # the smoke preset states its seed noise; the lead over uniform is judged against it in words
    assert summary["seed_noise"] == {"std": 0.025, "source": "stated estimate (search.seed_noise)"}
    lead = summary["uniform"]["delta"]
    verdict = "beyond the noise" if lead > 2 * 0.025 * 2**0.5 else "within the noise"
    assert summary["uniform"]["verdict"].endswith(verdict)
    # a smooth surface: the surrogate ranks held-out pilots, so its optimum was trained
    assert summary["decision"]["path"] == "surrogate"
    assert document["surrogate"]["trust"]["trusted"] is True
    # The best pilot is the record with the highest target score.
    best = max(document["pilots"], key=lambda r: r["out_score"])
    assert labels[2] == f"best pilot ({best['run_id']})"
    assert len(document["pilots"]) == 11 + 5
    assert len(document["proposals"]) == 3
    assert set(document["surrogate"]["cv"]) == {"quadratic", "linear", "gp"}
    assert [p["file"] for p in document["plots"]] == ["cv.png", "simplex.png"]


def test_report_html_is_self_contained_and_shows_every_section(report_dir):
    page = (report_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "every asset is inlined"
    assert "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == 2
    for heading in (
        "Base, uniform, best pilot and the chosen mixture",
        "Pilot runs (16)",
        "Surrogate quality",
        "Proposed mixtures",
        "Base policy pass rates",
        "Settings",
    ):
        assert heading in page
    for benchmark in BENCHMARKS:
        assert f"{benchmark} (" in page
    assert "&plusmn; 0.025" in page and "Path taken: <b>surrogate</b>" in page
    assert "Ranking test of the used model: <b>trusted</b>" in page
    records = json.loads((report_dir / "report.json").read_text())["pilots"]
    assert all(r["run_id"] in page for r in records)


def test_a_training_report_without_pilots_compares_base_and_trained(tmp_path):
    trained = Contender(
        "trained", "smoke-train-1", {"det": 0.5, "sci": 0.5}, {"in_score": 0.4, "out_score": 0.3}
    )
    data = ReportData(
        experiment="smoke",
        target="out_score",
        domains=("det", "sci"),
        splits={},
        contenders=compare("out_score", {"in_score": 0.2, "out_score": 0.1}, trained),
    )
    page = build_report(data, tmp_path).read_text()
    document = json.loads((tmp_path / "report.json").read_text())
    assert [c["label"] for c in document["comparison"]] == ["base", "trained"]
    assert document["summary"]["base"]["delta"] == pytest.approx(0.2)
    assert "uniform" not in document["summary"] and document["pilots"] == []
    assert "Pilot runs" not in page and "Surrogate quality" not in page and "<img" not in page


def test_inconsistent_report_inputs_are_refused(tmp_path):
    chosen = Contender("chosen", "c", {"det": 1.0}, {"in_score": 0.4})
    with pytest.raises(ReportError, match="out_score"):
        compare("out_score", {"out_score": 0.1}, chosen)
    from modomodo.report import Plot

    data = ReportData(
        "x",
        "in_score",
        ("det",),
        {},
        compare("in_score", {"in_score": 0.1}, chosen),
        plots=(Plot("p", "c", tmp_path / "missing.png"),),
    )
    with pytest.raises(ReportError, match="missing.png"):
        build_report(data, tmp_path)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} not found: install the Debian package chromium (scripts/test.sh does)", pytrace=False
        )
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("width", [1280, 1024])
def test_report_page_in_headless_chromium_loads_every_plot_and_cuts_nothing_off(report_dir, tmp_path, width):
    url = (report_dir / "report.html").as_uri()
    dom = chromium("--dump-dom", f"--window-size={width},900", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', re.search(r"<body[^>]*>", dom.stdout).group(0)))
    assert body["plots"] == "2" and body["plots-loaded"] == "true"
    assert body["overflow"] == "false", "the page is wider than the window"
    assert body["clipped-tables"] == "0", "a table needs sideways scrolling"
    height = int(body["height"])
    shot = tmp_path / "report.png"
    result = chromium(
        f"--screenshot={shot}", f"--window-size={width},{height}", url, profile=tmp_path / "profile-shot"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (width, height)
        pixels = np.asarray(image.convert("RGB"))
    # The whole page fits the screenshot: its last rows are the page background, not cut content,
    # and the plots made it into the picture (many distinct colours, not a blank page).
    assert (pixels[-4:] == pixels[-1, 0]).all()
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
    shutil.copy(shot, report_dir / f"screenshot-{width}.png")
