"""The ``modomodo`` command: one subcommand per stage, plus the whole loop.

Every stage command takes ``--preset`` (a name or a YAML file) and repeated ``--set key=value``
overrides; the config is validated before any work starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from modomodo.cli.common import Overrides, Preset, console, resolve_config
from modomodo.cli.mixture import app as mixture_app
from modomodo.cli.pipelines import register as register_pipeline_commands

CuratedData = Annotated[Path, typer.Option("--data", help="Curated dataset folder.")]
"""The curated dataset a stage reads (``modomodo data curate`` writes it)."""

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
data_app = typer.Typer(no_args_is_help=True, help="Generate and curate training and benchmark data.")
rewards_app = typer.Typer(no_args_is_help=True, help="Audit verifiable rewards on logged completions.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect presets.")
app.add_typer(data_app, name="data")
app.add_typer(rewards_app, name="rewards")
app.add_typer(config_app, name="config")
app.add_typer(mixture_app, name="mixture", help="Seed/heuristic mixtures, surrogates, Optuna search.")
register_pipeline_commands(app)  # run, compile, submit


@config_app.command("show")
def config_show(preset: Preset = "smoke", overrides: Overrides = None) -> None:
    """Print the resolved, validated config as YAML."""
    import yaml

    typer.echo(yaml.safe_dump(resolve_config(preset, overrides).to_dict(), sort_keys=False))


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option(help="Folder for the raw shards.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
) -> None:
    """Draw the built-in synthetic suite (training domains and benchmarks) as raw Parquet shards."""
    from modomodo import stages

    cfg = resolve_config(preset, overrides)
    written = stages.generate_synthetic(cfg, out, console=console)
    console.print(f"wrote {len(written)} shards to {out}")


@data_app.command("curate")
def data_curate(
    out: Annotated[Path, typer.Option(help="Folder for the curated dataset.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
) -> None:
    """Load, validate, quarantine, split and write shards with their report (the Kubeflow component
    publishes the folder as its output artifact)."""
    from modomodo import stages
    from modomodo.data.sources import SourceError
    from modomodo.store import StoreError

    cfg = resolve_config(preset, overrides)
    try:
        report = stages.curate_stage(cfg, out)
    except (SourceError, StoreError) as e:  # a source that cannot be read or fetched: no traceback
        console.print(f"[red]source error:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    _print_curation(report)


@app.command("warmstart")
def warmstart(
    data: CuratedData,
    out: Annotated[Path, typer.Option(help="Folder for the base policy.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
) -> None:
    """Build the base policy: the tiny model + SFT warm-start, or the configured pretrained model."""
    from modomodo import stages

    cfg = resolve_config(preset, overrides)
    path = stages.base_policy_stage(cfg, data, out, console=console)
    console.print(f"base policy: {path}")


@app.command("train")
def train(
    data: CuratedData,
    base: Annotated[Path, typer.Option(help="Base policy folder (from `modomodo warmstart`) or model id.")],
    out: Annotated[Path, typer.Option(help="Run folder: trainer checkpoints, final model, summary.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
    run_id: Annotated[
        str, typer.Option(help="Run id (names checkpoints in the store); default: the out folder's name.")
    ] = "",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint (local or in the store).")
    ] = False,
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Serve live metrics on /metrics of this port; 0: off.")
    ] = 0,
    processes: Annotated[
        int, typer.Option(min=1, help="Training processes on this machine, one per GPU (torchrun).")
    ] = 1,
    evaluate_out: Annotated[
        Path | None,
        typer.Option(help="Then evaluate the trained model into this folder (as `modomodo evaluate`)."),
    ] = None,
) -> None:
    """RL update: GRPO on the configured mixture."""
    from modomodo import stages
    from modomodo.rl.distributed import failure_recorded
    from modomodo.store import InvalidKeyError, validate_run_id

    cfg = resolve_config(preset, overrides)
    try:
        run_id = validate_run_id(run_id or out.name)
    except InvalidKeyError as e:
        console.print(f"[red]config error:[/red] --run-id: {escape(str(e))}")
        raise typer.Exit(2) from None
    with failure_recorded():  # a parent that launched this process learns why it failed
        result = stages.rl_stage(
            cfg,
            data,
            base,
            out,
            run_id=run_id,
            resume=resume,
            console=console,
            metrics_port=metrics_port,
            processes=processes,
            evaluate_to=evaluate_out,
        )
    table = Table(title=f"GRPO run {result.run_id}")
    for col in ("domain", "weight", "prompts drawn"):
        table.add_column(col)
    for d, w in result.mixture.items():
        table.add_row(d, f"{w:.3f}", str(result.realised_counts.get(d, 0)))
    console.print(table)
    resumed = f" (resumed from step {result.resumed_from_step})" if result.resumed_from_step else ""
    console.print(f"steps: {result.steps}{resumed}, {result.seconds:.1f} s, model: {result.model_dir}")


@app.command("evaluate")
def evaluate(
    data: CuratedData,
    model: Annotated[Path, typer.Option(help="Policy folder to evaluate.")],
    out: Annotated[Path, typer.Option(help="Folder for scores.json and samples.jsonl.")],
    preset: Preset = "smoke",
    overrides: Overrides = None,
) -> None:
    """Greedy evaluation on every benchmark: per-benchmark scores, In-Score, Out-Score."""
    from modomodo import stages

    cfg = resolve_config(preset, overrides)
    result = stages.evaluate_stage(cfg, data, model, out, console=console)
    console.print(score_table(f"evaluation of {model}", {"model": result}))


@rewards_app.command("score")
def rewards_score(
    input: Annotated[
        Path, typer.Option("--input", "-i", help="JSONL: completion, solution, and domain or rewards.")
    ],
    preset: Preset = "smoke",
    overrides: Overrides = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    layout: Annotated[
        str | None,
        typer.Option(help="Rows in this published layout (chartqa, lisa, ...): adapted before scoring."),
    ] = None,
    frame: Annotated[str | None, typer.Option(help="With --layout: the frame of its boxes.")] = None,
) -> None:
    """Score logged completions with a domain's configured rewards or with named registry rewards.
    With --layout, each row holds a published dataset's columns plus completion and domain or
    rewards; the row is adapted first, so published solutions (0-1000 grid boxes, corner pairs)
    are scored as curation stores them."""
    from modomodo.rewards.audit import render_table, score_layout_records, score_records
    from modomodo.rewards.domains import reward_sets

    cfg = resolve_config(preset, overrides)
    if layout:
        from modomodo.data.layouts import FRAMES, LayoutError, get_layout
        from modomodo.data.sources import SourceError, read_raw_records

        try:
            get_layout(layout)
            if frame is not None and frame not in FRAMES:
                raise LayoutError(f"--frame must be one of {sorted(FRAMES)}, got {frame!r}")
            records = read_raw_records(input)
        except (LayoutError, SourceError) as exc:
            raise typer.BadParameter(str(exc)) from None
        results = score_layout_records(records, layout, reward_sets(cfg), frame=frame)
    else:
        lines = input.read_bytes().splitlines()  # decoded line by line: a bad line spoils only itself
        results = score_records(lines, reward_sets(cfg))
    if as_json:
        for r in results:
            typer.echo(json.dumps(r, sort_keys=True))
    else:
        Console().print(render_table(results))
    if any("error" in r for r in results):
        raise typer.Exit(1)


def score_table(title: str, results: dict) -> Table:
    """Benchmarks as rows, one column per evaluated policy, In/Out-Score last."""
    table = Table(title=title)
    table.add_column("benchmark")
    table.add_column("split")
    for name in results:
        table.add_column(name, justify="right")
    first = next(iter(results.values()))
    for s in first.scores:
        table.add_row(
            s.benchmark, s.split, *(f"{r.by_benchmark()[s.benchmark]:.3f}" for r in results.values())
        )
    for label, attr in (("In-Score", "in_score"), ("Out-Score", "out_score")):
        table.add_row(f"[bold]{label}[/bold]", "", *(_fmt(getattr(r, attr)) for r in results.values()))
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"[bold]{value:.3f}[/bold]"


def _print_curation(report) -> None:
    """Kept rows per domain and split, quarantined rows with their reasons, and the rows in and out
    of each preprocessing step."""
    table = Table(title="curated data")
    for col in ("domain", "train", "test", "quarantined", "steps"):
        table.add_column(col)
    for domain, rows in sorted(report.rows.items()):
        reasons = report.quarantined.get(domain, {})
        quarantined = ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "0"
        steps = ", ".join(
            f"{c['step']} {c['rows_in']}->{c['rows_out']}"
            for split in report.steps.get(domain, {}).values()
            for c in split
        )
        table.add_row(domain, str(rows.get("train", 0)), str(rows.get("test", 0)), quarantined, steps or "-")
    console.print(table)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
