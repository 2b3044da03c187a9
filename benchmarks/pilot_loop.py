"""Active pilot planning by ask/tell: ask for the next pilot mixtures, run them, tell the scores.

What ``mixture_search.py`` drives its "active" design with; the pipeline runs its own rounds
(``search.rounds``: a search stage in ``explore`` mode, then the pilots it proposes).

The state is the run-records table plus the pilots asked for and not yet told, so a loop can be
rebuilt from a saved table at any time; with a persistent ``StudySettings.storage`` every ask's
Optuna study is kept too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from modomodo.mixture.records import RunRecords, make_run_record
from modomodo.mixture.search import Proposal, propose
from modomodo.mixture.simplex import Mixture
from modomodo.mixture.study import StudySettings


@dataclass
class PilotLoop:
    """Spend a pilot budget where the surrogate is both promising and unsure (mode b), then
    recommend the mixtures to train (mode a)."""

    records: RunRecords
    """The runs so far (grows with every ``tell``)."""
    target: str
    """The score column to maximise, e.g. ``out_score``."""
    model: str = "gp"
    model_options: dict[str, object] = field(default_factory=dict)
    n_bootstrap: int = 32
    """Bootstrap refits behind the uncertainty that drives exploration."""
    kappa: float = 2.0
    """Exploration weight: pilots maximise ``mean + kappa * std``."""
    search: StudySettings = field(default_factory=StudySettings)
    pending: list[Mixture] = field(default_factory=list)
    """Pilots asked for and not told yet; new asks keep away from them."""

    def _propose(self, k: int, mode: str) -> list[Proposal]:
        return propose(
            self.records,
            self.target,
            k=k,
            mode=mode,
            model=self.model,
            model_options=self.model_options,
            n_bootstrap=self.n_bootstrap,
            kappa=self.kappa,
            config=self.search,
            pending=self.pending,
        ).proposals

    def ask(self, k: int) -> list[Proposal]:
        """The next k pilot mixtures to run; they count as pending until told."""
        proposals = self._propose(k, "explore")
        self.pending.extend(p.mixture for p in proposals)
        return proposals

    def tell(
        self,
        mixture: Mapping[str, float],
        scores: Mapping[str, float],
        *,
        run_id: str | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Record a finished pilot (its scores must include the target)."""
        mixture = mixture if isinstance(mixture, Mixture) else Mixture(mixture)
        if self.target not in scores:
            raise ValueError(f"tell() needs the target score {self.target!r}, got {sorted(scores)}")
        row = make_run_record(
            run_id or self._fresh_run_id(), mixture, scores, {"kind": "pilot", **(metadata or {})}
        )
        self.records = self.records.append(row)
        # Proposals lie at least min_distance apart, so the nearest pending one within that radius
        # is the pilot just run (its weights may have been rounded for training).
        distances = [p.distance(mixture) for p in self.pending]
        if distances and min(distances) < max(self.search.min_distance, 1e-9):
            del self.pending[distances.index(min(distances))]

    def _fresh_run_id(self) -> str:
        taken = set(self.records.run_ids)
        number = len(taken)
        while f"active-{number:03d}" in taken:
            number += 1
        return f"active-{number:03d}"

    def recommend(self, k: int = 1) -> list[Proposal]:
        """The k best mixtures to train given everything told so far."""
        return self._propose(k, "best")
