"""The retrain gate's commands: ``accepted`` (the mixture the next retrain trains on) and
``gate`` (judge a finished run against the last accepted one, promote it when it passes). The
logic is ``modomodo.acceptance``; see docs/retraining.md."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from modomodo.cli.common import Overrides, Preset, console, resolve_config

StoreUri = Annotated[str, typer.Option(help="Artifact store of the runs, e.g. s3://modomodo/experiments.")]
EXIT_REGRESSION = 1
"""``gate``'s exit code for a run whose Out-Score regressed (2: the run cannot be judged)."""


def accepted(store_uri: StoreUri, preset: Preset = "smoke", overrides: Overrides = None) -> None:
    """Print the last accepted mixture of the config's experiment as JSON ({} when none was
    accepted yet), for `submit --set train.mixture=...`."""
    from modomodo.acceptance import read_accepted

    cfg = resolve_config(preset, overrides)
    record = _or_exit(lambda: read_accepted(_store(store_uri), cfg.name))
    if record is None:
        console.print(
            f"{cfg.name}: no accepted run yet in {store_uri}; the config's mixture trains", soft_wrap=True
        )
        typer.echo("{}")
        return
    console.print(f"{cfg.name}: accepted run {record.run}, Out-Score {record.out_score:.4f}", soft_wrap=True)
    typer.echo(json.dumps(record.mixture, sort_keys=True))


def gate(
    store_uri: StoreUri,
    run: Annotated[
        str, typer.Option(help="The pipeline run to judge: its report is reports/<run>/report.json.")
    ],
    tolerance: Annotated[
        float, typer.Option(min=0, help="Out-Score the run may lose against the accepted run and pass.")
    ] = 0.0,
    promote: Annotated[
        bool, typer.Option(help="Make a run that passes the accepted one of its experiment.")
    ] = True,
    pushgateway: Annotated[
        str,
        typer.Option(
            help="Pushgateway that gets a promoted run's scores as modomodo_eval_accepted_score, the "
            "evaluation-regression alert's baseline (default: $MODOMODO_PUSHGATEWAY; none: no push)."
        ),
    ] = "",
) -> None:
    """Fail (exit 1) when the run's Out-Score is below the last accepted run's by more than
    --tolerance; otherwise pass and promote it. The first run of an experiment always passes."""
    from modomodo.acceptance import gate as judge_run
    from modomodo.metrics import PUSHGATEWAY_ENV, push_accepted

    verdict = _or_exit(lambda: judge_run(_store(store_uri), run, tolerance, promote_passed=promote))
    if not verdict.passed:
        console.print(f"[red]{verdict.message}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_REGRESSION)
    promoted = f"; {run} is now the accepted run" if promote else ""
    console.print(f"[green]{verdict.message}[/green]{promoted}", soft_wrap=True)
    gateway = pushgateway or os.environ.get(PUSHGATEWAY_ENV, "")
    if promote and gateway:
        c = verdict.candidate
        scores = {"out_score": c.out_score, **({"in_score": c.in_score} if c.in_score is not None else {})}
        # The run is promoted in the store either way; a metrics outage must not fail the gate.
        if not push_accepted(c.run, scores, c.mixture, gateway=gateway, strict=False):
            console.print(f"[yellow]could not push the accepted scores to {gateway}[/yellow]", soft_wrap=True)


def _store(uri: str):
    from modomodo.store import ArtifactStore

    return ArtifactStore.from_uri(uri)


def _or_exit(action):
    """Run ``action``; a store or gate error is one red line and exit code 2."""
    from modomodo.acceptance import GateError
    from modomodo.store import StoreError

    try:
        return action()
    except (GateError, StoreError) as err:
        console.print(f"[red]{err}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command("accepted")(accepted)
    app.command("gate")(gate)
