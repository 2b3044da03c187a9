"""Issue 13, finding 9: each bad config and each bad mixture-command input is a one-line error with
exit code 2 before any work, never a traceback and never a silent success."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from modomodo.cli import app
from modomodo.mixture.records import RunRecords, make_run_record
from modomodo.mixture.seeds import random_pilots, seed_mixtures

runner = CliRunner()
DOMAINS = ["a", "b", "c"]


def _no_traceback(result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.mark.parametrize(
    ("preset_text", "overrides", "problem"),
    [
        (b"name: [unclosed\n", [], "not valid YAML"),
        (b"name: \xff\xfe\n", [], "not UTF-8"),
        (b"name: !!python/object/apply:os.system ['touch /tmp/pwned']\n", [], "not valid YAML"),
        (None, ["train.[/x]=1"], "unknown key"),
        (None, ["train.steps=[unclosed"], "not valid YAML"),
        (None, ["data.benchmarks=[nope]"], "unknown benchmarks"),
        (
            None,
            ["data.domains={shapes: {rewards: [{name: format}]}}"],
            "no synthetic generator named 'shapes'",
        ),
        (None, ["data.domains={det: {source: '', rewards: [{name: format}]}}"], "source: empty"),
        (None, ["store=ftp://x"], "unsupported store URI"),
        (None, ["train.steps=1000000000000"], "the schedule is built in memory"),
    ],
)
def test_bad_configs_are_config_errors_with_rc_2(tmp_path, preset_text, overrides, problem):
    preset = "smoke"
    if preset_text is not None:
        preset = str(tmp_path / "preset.yaml")
        (tmp_path / "preset.yaml").write_bytes(preset_text)
    args = ["config", "show", "--preset", preset]
    for item in overrides:
        args += ["--set", item]
    result = runner.invoke(app, args)
    _no_traceback(result)
    assert "config error" in result.output and problem in result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("runs")
    planned = seed_mixtures(DOMAINS) + random_pilots(DOMAINS, 12, seed=0)
    rows = [
        make_run_record(p.name, p.mixture, {"out_score": float(p.mixture.vector(DOMAINS) @ [0.1, 0.2, 0.3])})
        for p in planned
    ]
    good = RunRecords.from_rows(rows).write(folder / "runs.csv")
    (folder / "empty.csv").write_text("")
    (folder / "ragged.csv").write_text(good.read_text().splitlines()[0] + "\n1,2\n")
    (folder / "latin.csv").write_bytes(good.read_bytes().replace(b"run_id", b"run_\xffid", 1))
    (folder / "bad.parquet").write_bytes(b"PAR1garbagePAR1")
    frame = pd.read_csv(good)
    frame.loc[0, "out_score"] = 1e308
    frame.to_csv(folder / "huge.csv", index=False)
    return folder, good


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["fit", "--runs", "{d}/empty.csv"], "EmptyDataError"),
        (["fit", "--runs", "{d}/ragged.csv"], "missing (NaN) weights"),
        (["fit", "--runs", "{d}/latin.csv"], "UnicodeDecodeError"),
        (["fit", "--runs", "{d}/bad.parquet"], "bad.parquet"),
        (["fit", "--runs", "{d}/huge.csv"], "scores beyond"),
        (["seeds", "--domains", "a,b,c", "--seed", "-1"], "--seed"),
        (["fit", "--runs", "{d}/runs.csv", "--plot", "/proc/nope/plots"], "/proc/nope"),
        (["propose", "--runs", "{d}/runs.csv", "--explore", "--kappa", "nan", "--storage", "{d}/s.db"], "--kappa"),
        (["propose", "--runs", "{d}/runs.csv", "--ridge", "inf", "--storage", "{d}/s.db"], "--ridge"),
        (["propose", "--runs", "{d}/runs.csv", "--storage", "postgresql://u:pw@h:x/db"], "not a database URL"),
    ],
)  # fmt: skip
def test_bad_mixture_command_input_is_a_one_line_error(runs, args, problem):
    folder, _ = runs
    result = runner.invoke(app, ["mixture", *(a.format(d=folder) for a in args)])
    _no_traceback(result)
    assert problem in result.output
