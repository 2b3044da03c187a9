"""``modomodo mixture ...``: seed and heuristic mixtures, surrogate fits and mixture search.

Every command prints a table; ``--json FILE`` also writes the result as JSON (``--json -``
prints the JSON instead of the table).
"""

from __future__ import annotations

import dataclasses
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

from modomodo.cli.common import Overrides, Preset, resolve_config
from modomodo.cli.mixture_tables import fit_tables, proposals_table, weights_table
from modomodo.config_search import SearchConfig
from modomodo.mixture.heuristics import HeuristicError, compute_heuristics
from modomodo.mixture.records import RunRecords, RunRecordsError, load_run_records
from modomodo.mixture.search import SEARCH_BOOTSTRAP, UCB_KAPPA
from modomodo.mixture.seeds import random_pilots, seed_mixtures, spread_pilots
from modomodo.mixture.simplex import Mixture, MixtureError
from modomodo.mixture.study import SearchError, StudySettings
from modomodo.mixture.surrogates import SURROGATES, SurrogateError
from modomodo.redact import redact_text, redact_url
from modomodo.stages.search import section_search
from modomodo.stages.surrogate import section_cross_validation, section_surrogate

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
Target = Annotated[
    str | None, typer.Option("--target", help="Score column to model (default: the preset's search.target).")
]
Model = Annotated[
    str | None,
    typer.Option(
        "--model", help=f"Surrogate: {', '.join(SURROGATES)} (default: the preset's search.surrogate)."
    ),
]
Ridge = Annotated[
    str | None,
    typer.Option("--ridge", help="Quadratic only: 'auto' (leave-one-out choice), 0 (OLS) or a strength."),
]
Seed = Annotated[
    int, typer.Option("--seed", min=0, help="Seed of every random choice (same seed, same output).")
]
Bootstrap = Annotated[int, typer.Option("--bootstrap", help="Bootstrap refits for uncertainty (0: none).")]
SectionSeed = Annotated[
    int | None,
    typer.Option("--seed", min=0, help="Seed of the fit and search (default: the preset's search.seed)."),
]
JsonOut = Annotated[
    str | None, typer.Option("--json", help="Write JSON to this file; '-' prints JSON instead of the table.")
]

Count = Annotated[
    int | None,
    typer.Option(
        "--k", help="How many mixtures (default: search.top_k, with --explore search.pilots_per_round)."
    ),
]
Explore = Annotated[
    bool,
    typer.Option("--explore", help="Propose the next pilots to run (UCB), not the best mixtures to train."),
]
PaperCandidates = Annotated[
    bool,
    typer.Option(
        "--paper-candidates",
        help="Use the paper's candidate generation (one Gaussian, top k) instead of Optuna.",
    ),
]
Storage = Annotated[
    str | None,
    typer.Option(
        help="Optuna RDB storage: a URL (sqlite:///..., postgresql://...) or a SQLite file path; default ./study.db."
    ),
]
StudyName = Annotated[
    str | None,
    typer.Option(
        help="Study name (default: derived from the table, target, model and options, so reruns resume)."
    ),
]
Trials = Annotated[
    int | None, typer.Option(help="Optuna trials beyond the observed mixtures (default: search.trials).")
]
Kappa = Annotated[float, typer.Option(help="Exploration weight of --explore: mean + kappa * std.")]
MinDistance = Annotated[
    float | None,
    typer.Option(
        help="Least total-variation distance between proposals (and from runs done, with --explore); default 0.05."
    ),
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
    table = weights_table(
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
    table = weights_table("heuristic mixtures", records.domains, rows, ("heuristic",), ("seed runs used",))
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
    preset: Preset = "smoke",
    overrides: Overrides = None,
    target: Target = None,
    model: Model = None,
    ridge: Ridge = None,
    folds: Annotated[
        int, typer.Option(help="k of the k-fold cross-validation (leave-one-out is always reported too).")
    ] = 5,
    bootstrap: Bootstrap = SEARCH_BOOTSTRAP,
    seed: SectionSeed = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write PNG plots (predicted vs actual per CV scheme, simplex slices) to this directory."
        ),
    ] = None,
    domains: Domains = None,
    json_out: JsonOut = None,
) -> None:
    """Fit a surrogate of score(mixture) and report its cross-validated quality, as the pipeline's
    surrogate stage does (its target, model and seed: the preset's ``search`` section)."""
    search = _search_section(preset, overrides, target=target, surrogate=model, seed=seed)
    with _user_errors():
        if plot:  # before the work: an unwritable folder fails now, not after the fit
            plot.mkdir(parents=True, exist_ok=True)
        records = load_run_records(runs, _split(domains))
        options = {"n_bootstrap": bootstrap, **_ridge_option(search.surrogate, ridge)}
        weights, y = records.weights(), records.scores(search.target)
        surrogate = section_surrogate(search, **options).fit(weights, y)
    summary = surrogate.describe(records.domains)
    validations, unavailable = [], {}
    for scheme_folds in (folds, None):
        try:
            validations.append(section_cross_validation(search, records, folds=scheme_folds, **options))
        except SurrogateError as err:
            unavailable["leave-one-out" if scheme_folds is None else f"{scheme_folds}-fold"] = str(err)
    for scheme, why in unavailable.items():
        errors.print(f"[yellow]{scheme} not possible:[/] {why}")
    plots = _fit_plots(plot, search.surrogate, surrogate, records, validations) if plot else []
    payload = {
        "target": search.target,
        "fit": summary,
        "cross_validation": [v.to_dict() for v in validations],
        "cross_validation_unavailable": unavailable,
        "plots": plots,
    }
    _emit(fit_tables(search.surrogate, search.target, summary, validations, unavailable), payload, json_out)


def _fit_plots(folder: Path, model: str, surrogate, records: RunRecords, validations) -> list[str]:
    """Predicted against actual per cross-validation scheme, and slices through the best run."""
    from modomodo.mixture.plots import plot_cross_validation, plot_simplex_slices

    plots = [
        str(plot_cross_validation(v, folder / f"cv-{v.scheme}.png", title=f"{model}:")) for v in validations
    ]
    weights = records.weights()
    anchor = records.mixtures()[int(np.argmax(surrogate.predict(weights)))]
    slices = plot_simplex_slices(
        surrogate, records.domains, folder / "slices.png", anchor=anchor, observed=weights
    )
    return [*plots, str(slices)]


@app.command(name="propose")
def propose_command(
    runs: Runs,
    preset: Preset = "smoke",
    overrides: Overrides = None,
    target: Target = None,
    k: Count = None,
    explore: Explore = False,
    paper_candidates: PaperCandidates = False,
    model: Model = None,
    ridge: Ridge = None,
    storage: Storage = None,
    study_name: StudyName = None,
    trials: Trials = None,
    kappa: Kappa = UCB_KAPPA,
    min_distance: MinDistance = None,
    bootstrap: Bootstrap = SEARCH_BOOTSTRAP,
    seed: SectionSeed = None,
    domains: Domains = None,
    json_out: JsonOut = None,
) -> None:
    """The k best mixtures to train (default), or with --explore the k next pilots to run, as the
    pipeline's search stage proposes them (the preset's ``search`` section)."""
    search = _search_section(preset, overrides, target=target, surrogate=model, trials=trials, seed=seed)
    with _user_errors():
        if explore and paper_candidates:
            raise SearchError(
                "--paper-candidates generates final candidates; it does not combine with --explore"
            )
        if not (math.isfinite(kappa) and kappa >= 0):
            raise SearchError(f"--kappa must be a finite number >= 0, got {kappa}")
        mode = "explore" if explore else "paper" if paper_candidates else "best"
        k = k or (search.pilots_per_round if explore else search.top_k)
        records: RunRecords = load_run_records(runs, _split(domains))
        result = section_search(search, records, mode=mode, k=k, storage=storage, study_name=study_name,
                                min_distance=min_distance, model_options=_ridge_option(search.surrogate, ridge),
                                n_bootstrap=bootstrap, kappa=kappa)  # fmt: skip
    _emit(proposals_table(result, records.domains, mode), result.to_dict(), json_out)
    if json_out != "-":
        if len(result.proposals) < k:
            apart = min_distance if min_distance is not None else StudySettings().min_distance
            errors.print(
                f"[yellow]only {len(result.proposals)} mixtures lie {apart} apart;[/] lower --min-distance or raise --trials"
            )
        if result.study_name:
            console.print(f"study {result.study_name} in {redact_url(result.storage)} (rerun to resume)")


def _search_section(preset: str, overrides: list[str] | None, **options: object) -> SearchConfig:
    """The preset's ``search`` section, with the options given on the command line."""
    search = resolve_config(preset, overrides).search
    return dataclasses.replace(search, **{key: value for key, value in options.items() if value is not None})
