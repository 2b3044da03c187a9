"""Run records: the table of pilot results (one row a run) that heuristics and surrogates read.

Columns:
- ``run_id``: unique per row;
- ``w_<domain>``: the mixture, one column per domain (at least two), each row on the simplex;
- ``<name>_score``: scores (``in_score``, ``out_score``, per-benchmark ``chartqa_score``, ...);
- anything else is metadata and is kept as is (``seed``, ``steps``, ``kind``, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modomodo.mixture.simplex import SUM_TOLERANCE, Mixture, column_domain, weight_column

RUN_ID = "run_id"
SCORE_SUFFIX = "_score"
RUN_KINDS = ("seed", "heuristic", "pilot", "model")
"""Allowed values of the optional ``kind`` metadata column."""


class RunRecordsError(ValueError):
    """A run-records table that breaks the format; the message names the runs and columns."""


def is_score_column(column: str) -> bool:
    return column.endswith(SCORE_SUFFIX) and column != SCORE_SUFFIX


def _listing(items: Iterable[object], limit: int = 8) -> str:
    items = list(items)
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def make_run_record(
    run_id: str,
    mixture: Mapping[str, float],
    scores: Mapping[str, float],
    metadata: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """One row of the run-records table (what the training pipeline appends after a run)."""
    mixture = mixture if isinstance(mixture, Mixture) else Mixture(mixture)
    row: dict[str, object] = {RUN_ID: str(run_id), **mixture.to_columns()}
    for name, value in scores.items():
        if not is_score_column(name):
            raise RunRecordsError(f"score {name!r} of run {run_id!r}: score names end in {SCORE_SUFFIX!r}")
        value = float(value)
        if not np.isfinite(value):
            raise RunRecordsError(f"score {name!r} of run {run_id!r} is {value}")
        row[name] = value
    for name, value in (metadata or {}).items():
        if name == RUN_ID or column_domain(name) or is_score_column(name):
            raise RunRecordsError(
                f"metadata key {name!r} of run {run_id!r} clashes with a run-id, weight or score column"
            )
        row[name] = value
    return row


@dataclass(frozen=True)
class RunRecords:
    """A validated run-records table; build it with ``from_frame``/``from_rows``/``load_run_records``."""

    frame: pd.DataFrame
    """The table, one row a run, in file order (treat as read-only; ``to_frame`` gives a copy)."""
    domains: tuple[str, ...]
    """The domains, in the order of ``--domains`` when given, else of the ``w_`` columns."""

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, domains: Sequence[str] | None = None) -> RunRecords:
        frame = frame.reset_index(drop=True).copy()
        if RUN_ID not in frame.columns:
            raise RunRecordsError(f"missing the {RUN_ID!r} column (columns: {_listing(frame.columns)})")
        frame[RUN_ID] = frame[RUN_ID].astype(str)
        table_domains = [d for c in frame.columns if (d := column_domain(str(c)))]
        if len(table_domains) < 2:
            raise RunRecordsError(
                f"need at least two w_<domain> weight columns, found {table_domains or 'none'}"
            )
        if domains is not None:
            unknown = [d for d in table_domains if d not in domains]
            missing = [d for d in domains if d not in table_domains]
            if unknown or missing:
                problems = [f"unknown domains {unknown}"] if unknown else []
                problems += [f"missing domains {missing} (no w_<domain> column)"] if missing else []
                raise RunRecordsError("; ".join(problems) + f"; expected domains {list(domains)}")
            table_domains = list(domains)
        records = cls(frame=frame, domains=tuple(table_domains))
        records._validate()
        return records

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, object]], domains: Sequence[str] | None = None
    ) -> RunRecords:
        return cls.from_frame(pd.DataFrame(list(rows)), domains)

    def _validate(self) -> None:
        frame, ids = self.frame, self.frame[RUN_ID]
        duplicated = ids[ids.duplicated()].unique().tolist()
        if duplicated:
            raise RunRecordsError(f"duplicate run ids: {_listing(duplicated)}")
        columns = [weight_column(d) for d in self.domains]
        weights = self._numeric(columns, "weight")
        bad = np.isnan(weights).any(axis=1)
        if bad.any():
            raise RunRecordsError(f"missing (NaN) weights in runs {_listing(ids[bad])}")
        negative = np.flatnonzero((weights < 0).any(axis=1))
        if negative.size:
            details = _listing(
                f"{ids[i]!r} ({', '.join(f'{d}={weights[i, j]:g}' for j, d in enumerate(self.domains) if weights[i, j] < 0)})"
                for i in negative
            )
            raise RunRecordsError(f"negative weights in runs {details}")
        sums = weights.sum(axis=1)
        off = np.abs(sums - 1.0) > SUM_TOLERANCE
        if off.any():
            details = _listing(f"{ids[i]!r} (sum {sums[i]:.9g})" for i in np.flatnonzero(off))
            raise RunRecordsError(
                f"weights must sum to 1 within {SUM_TOLERANCE:g}; they do not in runs {details}"
            )
        scores = self._numeric(list(self.score_columns), "score")
        for j, column in enumerate(self.score_columns):
            nan = np.isnan(scores[:, j])
            if nan.any():
                raise RunRecordsError(f"score column {column!r} is NaN in runs {_listing(ids[nan])}")
        if "kind" in frame.columns:
            unknown = sorted(set(frame["kind"].dropna().astype(str)) - set(RUN_KINDS))
            if unknown:
                raise RunRecordsError(f"column 'kind' has values {unknown}; allowed: {list(RUN_KINDS)}")

    def _numeric(self, columns: list[str], what: str) -> np.ndarray:
        if not columns:
            return np.empty((len(self.frame), 0))
        try:
            return self.frame[columns].apply(pd.to_numeric).to_numpy(dtype=float)
        except (ValueError, TypeError) as err:
            raise RunRecordsError(f"{what} columns {columns} must be numeric: {err}") from err

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def run_ids(self) -> list[str]:
        return self.frame[RUN_ID].tolist()

    @property
    def score_columns(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.frame.columns if is_score_column(str(c)))

    def weights(self) -> np.ndarray:
        """The mixtures as an ``(n_runs, n_domains)`` array, columns in ``domains`` order."""
        return self.frame[[weight_column(d) for d in self.domains]].to_numpy(dtype=float)

    def mixtures(self) -> list[Mixture]:
        return [Mixture.from_vector(self.domains, row) for row in self.weights()]

    def scores(self, column: str) -> np.ndarray:
        """One numeric column without gaps (the target of a surrogate or a heuristic)."""
        if column not in self.frame.columns:
            raise RunRecordsError(
                f"no column {column!r} in the run records; score columns: {list(self.score_columns) or 'none'}"
            )
        values = pd.to_numeric(self.frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise RunRecordsError(
                f"column {column!r} is missing or not numeric in runs {_listing(self.frame[RUN_ID][bad])}"
            )
        huge = np.abs(values) > MAX_SCORE
        if huge.any():
            raise RunRecordsError(
                f"column {column!r} holds scores beyond +-{MAX_SCORE:g} in runs {_listing(self.frame[RUN_ID][huge])}; "
                "scores are accuracies and rewards (a surrogate's squares of such values overflow)"
            )
        return values

    def append(self, *rows: Mapping[str, object]) -> RunRecords:
        """A new table with ``rows`` (see ``make_run_record``) added; their absent domains weigh 0."""
        new = pd.DataFrame(list(rows))
        for domain in self.domains:
            column = weight_column(domain)
            new[column] = new[column].fillna(0.0) if column in new.columns else 0.0
        return RunRecords.from_frame(pd.concat([self.frame, new], ignore_index=True), self.domains)

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def write(self, path: str | Path) -> Path:
        """Write CSV or Parquet, chosen by the suffix."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if _table_format(path) == "csv":
            self.frame.to_csv(path, index=False)
        else:
            self.frame.to_parquet(path, index=False)
        return path

    def fingerprint(self) -> str:
        """A content hash of the table (columns, order and values): equal tables, equal hashes."""
        return hashlib.sha256(self.frame.to_csv(index=False).encode()).hexdigest()


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    raise RunRecordsError(f"{path}: run records are .csv or .parquet files, not {suffix or 'suffix-less'}")


MAX_SCORE = 1e6
"""Largest score magnitude a surrogate is fitted to; scores are accuracies and rewards, far below."""


def load_run_records(path: str | Path, domains: Sequence[str] | None = None) -> RunRecords:
    """Read and validate a run-records table (CSV or Parquet by suffix).

    ``domains``, when given, must be exactly the table's ``w_`` columns (any order; it sets the order).
    """
    path = Path(path)
    kind = _table_format(path)
    if not path.is_file():
        raise RunRecordsError(f"run records file not found: {path}")
    frame = pd.read_csv(path, dtype={RUN_ID: str}) if kind == "csv" else pd.read_parquet(path)
    try:
        return RunRecords.from_frame(frame, domains)
    except RunRecordsError as err:
        raise RunRecordsError(f"{path}: {err}") from err
