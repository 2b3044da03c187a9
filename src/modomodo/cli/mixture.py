"""``modomodo mixture ...``: seed and heuristic mixtures, surrogate fits and mixture search.

Every command prints a table; ``--json FILE`` also writes the result as JSON (``--json -``
prints the JSON instead of the table).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from modomodo.mixture.heuristics import HeuristicError, compute_heuristics
from modomodo.mixture.records import RunRecords, RunRecordsError, load_run_records
from modomodo.mixture.search import propose
from modomodo.mixture.seeds import random_pilots, seed_mixtures, spread_pilots
from modomodo.mixture.simplex import Mixture, MixtureError
from modomodo.mixture.study import SearchError, StudySettings, resolve_storage
from modomodo.mixture.surrogates import SURROGATES, SurrogateError, make_surrogate
from modomodo.redact import redact_text, redact_url

app = typer.Typer(
    help="Mixture science: seed and heuristic mixtures, surrogates, search over the simplex.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

Runs = Annotated[Path, typer.Option("--runs", help="Run-records table (.csv or .parquet).")]
Domains = Annotated[
    str | None,
    typer.Option("--domains", help="Expected domains, comma-separated (checked against the w_ columns)."),
]
Target = Annotated[str, typer.Option("--target", help="Score column to model (e.g. out_score).")]
Model = Annotated[str, typer.Option("--model", help=f"Surrogate: {', '.join(SURROGATES)}.")]
Ridge = Annotated[
    str | None,
    typer.Option("--ridge", help="Quadratic only: 'auto' (leave-one-out choice), 0 (OLS) or a strength."),
]
Seed = Annotated[
    int, typer.Option("--seed", min=0, help="Seed of every random choice (same seed, same output).")
]
Bootstrap = Annotated[int, typer.Option("--bootstrap", help="Bootstrap refits for uncertainty (0: none).")]
JsonOut = Annotated[
    str | None, typer.Option("--json", help="Write JSON to this file; '-' prints JSON instead of the table.")
]

_USER_ERRORS = (MixtureError, RunRecordsError, HeuristicError, SurrogateError, SearchError)
_FILE_ERRORS = (
    OSError,
    UnicodeDecodeError,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    pa.ArrowException,
)
"""A run table or output path that cannot be read or written: empty, ragged or non-UTF-8 CSV,
corrupt Parquet, an unwritable ``--plot``/``--json`` path."""


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input is reported in one line and exit code 2, not a traceback."""
    try:
        yield
    except _USER_ERRORS as err:
        errors.print(f"[bold red]error:[/] {escape(redact_text(str(err)))}")
        raise typer.Exit(2) from err
    except _FILE_ERRORS as err:
        errors.print(f"[bold red]error:[/] {type(err).__name__}: {escape(redact_text(str(err)))}")
        raise typer.Exit(2) from err


def _split(domains: str | None) -> list[str] | None:
    return [d.strip() for d in domains.split(",") if d.strip()] if domains else None


def _jsonable(value: object) -> object:
    """NaN (no bootstrap, no interval) becomes null, so the output is strict JSON."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def _emit(table: Table | Sequence[Table], payload: object, json_out: str | None) -> None:
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False)
    if json_out == "-":
        typer.echo(text)
        return
    for item in [table] if isinstance(table, Table) else table:
        console.print(item)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(text + "\n")
        console.print(f"JSON written to {json_out}")


def _weights_table(
    title: str,
    domains: Sequence[str],
    rows: Sequence[tuple[Sequence[str], Mixture, Sequence[str]]],
    head: Sequence[str],
    tail: Sequence[str],
) -> Table:
    table = Table(title=title)
    for name in head:
        table.add_column(name)
    for domain in domains:
        table.add_column(f"w_{domain}", justify="right")
    for name in tail:
        table.add_column(name, justify="right")
    for first, mixture, last in rows:
        table.add_row(*first, *(f"{mixture.get(d, 0.0):.3f}" for d in domains), *last)
    return table


def _ridge_option(model: str, ridge: str | None) -> dict[str, object]:
    if ridge is None:
        return {}
    if model != "quadratic":
        raise SurrogateError(f"--ridge applies to the quadratic surrogate, not {model!r}")
    if ridge == "auto":
        return {"ridge": "auto"}
    try:
        strength = float(ridge)
    except ValueError as err:
        raise SurrogateError(f"--ridge is 'auto' or a number, got {ridge!r}") from err
    if not (math.isfinite(strength) and strength >= 0):
        raise SurrogateError(f"--ridge must be a finite number >= 0, got {ridge!r}")
    return {"ridge": strength}


@app.command()
def seeds(
    domains: Annotated[str, typer.Option("--domains", help="Domains, comma-separated.")],
    random: Annotated[
        int, typer.Option("--random", help="Also draw this many random (Dirichlet) pilots.")
    ] = 0,
    spread: Annotated[
        int,
        typer.Option("--spread", help="Also this many space-filling pilots, away from the mixtures above."),
    ] = 0,
    seed: Seed = 0,
    concentration: Annotated[
        float | None,
        typer.Option(
            help="Dirichlet strength (default: number of domains, i.e. uniform on the simplex with a uniform prior)."
        ),
    ] = None,
    prior: Annotated[
        str | None, typer.Option(help="Dirichlet centre as a=2,b=1,... (normalised; default uniform).")
    ] = None,
    min_weight: Annotated[
        float, typer.Option(help="Random pilots: weights below this are set to 0 (RegMix).")
    ] = 0.0,
    json_out: JsonOut = None,
) -> None:
    """The paper's seed mixtures (single, exclude-one, uniform), plus random or space-filling pilots."""
    with _user_errors():
        names = _split(domains) or []
        planned = seed_mixtures(names)
        if random:
            planned += random_pilots(
                names,
                random,
                seed=seed,
                prior=Mixture.parse(prior) if prior else None,
                concentration=concentration,
                min_weight=min_weight,
            )
        if spread:
            planned += spread_pilots(
                names, spread, seed=seed, existing=np.array([p.mixture.vector(names) for p in planned])
            )
    table = _weights_table(
        "mixtures to run", names, [((p.name, p.kind), p.mixture, ()) for p in planned], ("name", "kind"), ()
    )
    payload = [
        {"name": p.name, "kind": p.kind, "label": p.mixture.label(), "mixture": p.mixture.to_dict()}
        for p in planned
    ]
    _emit(table, payload, json_out)


@app.command()
def heuristics(
    runs: Runs,
    domains: Domains = None,
    alpha_single: Annotated[
        float, typer.Option(help="Discount of single-domain runs in Ain/Aout/Abal (not given in the paper).")
    ] = 1.0,
    in_column: Annotated[str, typer.Option(help="In-domain score column.")] = "in_score",
    out_column: Annotated[
        str, typer.Option(help="Out-of-domain score column (Aout, Abal, Coli, Norm).")
    ] = "out_score",
    json_out: JsonOut = None,
) -> None:
    """The paper's heuristic mixtures (Ain, Aout, Abal, Coli, Norm) from the seed runs."""
    with _user_errors():
        records = load_run_records(runs, _split(domains))
        results, failures = compute_heuristics(
            records, alpha_single=alpha_single, in_column=in_column, out_column=out_column
        )
        if not results:
            raise HeuristicError(
                "no heuristic could be computed:\n  "
                + "\n  ".join(f"{n}: {why}" for n, why in failures.items())
            )
    rows = [((h.name,), h.mixture, (str(len(h.runs)),)) for h in results]
    table = _weights_table("heuristic mixtures", records.domains, rows, ("heuristic",), ("seed runs used",))
    payload = {
        "heuristics": [
            {"name": h.name, "label": h.mixture.label(), "mixture": h.mixture.to_dict(), "runs": list(h.runs)}
            for h in results
        ],
        "skipped": failures,
    }
    _emit(table, payload, json_out)
    if json_out != "-":
        for name, why in failures.items():
            errors.print(f"[yellow]skipped {name}:[/] {why}")


@app.command()
def fit(
    runs: Runs,
    target: Target = "out_score",
    model: Model = "gp",
    ridge: Ridge = None,
    folds: Annotated[
        int, typer.Option(help="k of the k-fold cross-validation (leave-one-out is always reported too).")
    ] = 5,
    bootstrap: Bootstrap = 64,
    seed: Seed = 0,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write PNG plots (predicted vs actual per CV scheme, simplex slices) to this directory."
        ),
    ] = None,
    domains: Domains = None,
    json_out: JsonOut = None,
) -> None:
    """Fit a surrogate of score(mixture) and report its cross-validated quality."""
    from modomodo.mixture.quality import cross_validate

    with _user_errors():
        if plot:  # before the work: an unwritable folder fails now, not after the fit
            plot.mkdir(parents=True, exist_ok=True)
        records = load_run_records(runs, _split(domains))
        weights, y = records.weights(), records.scores(target)
        surrogate = make_surrogate(
            model, n_bootstrap=bootstrap, seed=seed, **_ridge_option(model, ridge)
        ).fit(weights, y)
    summary = surrogate.describe(records.domains)
    validations, unavailable = [], {}
    for scheme_folds in (folds, None):
        try:
            validations.append(cross_validate(surrogate, weights, y, folds=scheme_folds, seed=seed))
        except SurrogateError as err:
            unavailable["leave-one-out" if scheme_folds is None else f"{scheme_folds}-fold"] = str(err)

    overview = Table(title=f"{model} surrogate of {target}")
    overview.add_column("setting")
    overview.add_column("value", justify="right")
    for key, value in summary.items():
        if key != "coefficients":
            overview.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    quality = Table(title="cross-validated quality (out-of-fold predictions)")
    for name in ("scheme", "R²", "RMSE", "Spearman"):
        quality.add_column(name, justify="right")
    for v in validations:
        quality.add_row(v.scheme, f"{v.r2:.3f}", f"{v.rmse:.4f}", f"{v.spearman:.3f}")
    for scheme, why in unavailable.items():
        quality.add_row(scheme, "-", "-", "-")
        errors.print(f"[yellow]{scheme} not possible:[/] {why}")
    tables = [overview, quality]
    if "coefficients" in summary:
        coefficients = Table(title="coefficients")
        coefficients.add_column("term")
        coefficients.add_column("value", justify="right")
        for term, value in summary["coefficients"].items():
            coefficients.add_row(term, f"{value:+.4f}")
        tables.append(coefficients)

    plots: list[str] = []
    if plot:
        from modomodo.mixture.plots import plot_cross_validation, plot_simplex_slices

        for v in validations:
            plots.append(str(plot_cross_validation(v, plot / f"cv-{v.scheme}.png", title=f"{model}:")))
        anchor = records.mixtures()[int(np.argmax(surrogate.predict(weights)))]
        plots.append(
            str(
                plot_simplex_slices(
                    surrogate, records.domains, plot / "slices.png", anchor=anchor, observed=weights
                )
            )
        )
    payload = {
        "target": target,
        "fit": summary,
        "cross_validation": [v.to_dict() for v in validations],
        "cross_validation_unavailable": unavailable,
        "plots": plots,
    }
    _emit(tables, payload, json_out)


@app.command(name="propose")
def propose_command(
    runs: Runs,
    target: Target = "out_score",
    k: Annotated[int, typer.Option("--k", help="How many mixtures to return.")] = 10,
    explore: Annotated[
        bool,
        typer.Option(
            "--explore", help="Propose the next pilots to run (UCB), not the best mixtures to train."
        ),
    ] = False,
    paper_candidates: Annotated[
        bool,
        typer.Option(
            "--paper-candidates",
            help="Use the paper's candidate generation (one Gaussian, top k) instead of Optuna.",
        ),
    ] = False,
    model: Model = "gp",
    ridge: Ridge = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna RDB storage: a URL (sqlite:///..., postgresql://...) or a SQLite file path; default ./modomodo-mixture.db."
        ),
    ] = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            help="Study name (default: derived from the table, target, model and options, so reruns resume)."
        ),
    ] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials beyond the observed mixtures.")] = 300,
    kappa: Annotated[float, typer.Option(help="Exploration weight of --explore: mean + kappa * std.")] = 2.0,
    min_distance: Annotated[
        float,
        typer.Option(
            help="Least total-variation distance between proposals (and from runs done, with --explore)."
        ),
    ] = 0.05,
    bootstrap: Bootstrap = 32,
    seed: Seed = 0,
    domains: Domains = None,
    json_out: JsonOut = None,
) -> None:
    """The k best mixtures to train (default), or with --explore the k next pilots to run."""
    with _user_errors():
        if explore and paper_candidates:
            raise SearchError(
                "--paper-candidates generates final candidates; it does not combine with --explore"
            )
        if not (math.isfinite(kappa) and kappa >= 0):
            raise SearchError(f"--kappa must be a finite number >= 0, got {kappa}")
        mode = "explore" if explore else "paper" if paper_candidates else "best"
        records: RunRecords = load_run_records(runs, _split(domains))
        config = StudySettings(
            n_trials=trials,
            seed=seed,
            storage=resolve_storage(storage),
            study_name=study_name,
            min_distance=min_distance,
        )
        result = propose(
            records,
            target,
            k=k,
            mode=mode,
            model=model,
            model_options=_ridge_option(model, ridge),
            n_bootstrap=bootstrap,
            kappa=kappa,
            config=config,
        )
    title = {
        "best": "best mixtures to train",
        "explore": "next pilots to run",
        "paper": "paper's candidates",
    }[mode]
    tail = ("predicted", "interval", "UCB" if explore else "std", "source")
    rows = [
        (
            (str(rank),),
            p.mixture,
            (
                f"{p.mean:.4f}",
                "-" if np.isnan(p.lower) else f"[{p.lower:.4f}, {p.upper:.4f}]",
                f"{p.acquisition:.4f}" if explore else ("-" if np.isnan(p.std) else f"{p.std:.4f}"),
                p.source,
            ),
        )
        for rank, p in enumerate(result.proposals, start=1)
    ]
    table = _weights_table(f"{title} ({model} surrogate of {target})", records.domains, rows, ("#",), tail)
    _emit(table, result.to_dict(), json_out)
    if json_out != "-":
        if len(result.proposals) < k:
            errors.print(
                f"[yellow]only {len(result.proposals)} mixtures lie {min_distance} apart;[/] lower --min-distance or raise --trials"
            )
        if result.study_name:
            console.print(f"study {result.study_name} in {redact_url(result.storage)} (rerun to resume)")
