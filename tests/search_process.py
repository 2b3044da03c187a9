"""Helper process for tests/test_security.py: one mixture search stage, as a search pod runs it,
on records over the smoke preset's domains, with every log line at DEBUG on stderr (so the test
sees all a run prints). The study storage comes from ``$MODOMODO_STUDY_STORAGE`` as in the pod.

Usage: python search_process.py OUT_DIR PUSHGATEWAY_URL
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np

from modomodo import stages
from modomodo.config import load_config
from modomodo.mixture import pilots as plans
from modomodo.mixture.seeds import random_pilots


def main(out_dir: Path, pushgateway: str) -> None:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    cfg = load_config("smoke", ["search.trials=30", f"pushgateway={pushgateway}"])
    domains = list(cfg.data.domains)
    pilots = plans.seed_pilots(cfg) + [
        plans.pilot_item(p.name, p.mixture, p.kind) for p in random_pilots(domains, 6, seed=1)
    ]
    rows = []
    for i, pilot in enumerate(pilots):
        w = np.array([pilot["mixture"].get(d, 0.0) for d in domains])
        score = float(np.linspace(0.2, 0.4, len(w)) @ w + w[0] * w[-1])
        run = {"run_id": f"{pilot['run']}-{i}", "mixture": pilot["mixture"], "kind": pilot["kind"]}
        rows.append(plans.run_record({**run, "seed": 42, "steps": 60}, {"out_score": score}))
    records = plans.load_records(cfg, rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    records.write(out_dir / "records.csv")
    found = stages.search_stage(
        cfg, records, out_dir, mode="best", k=3, storage=os.environ["MODOMODO_STUDY_STORAGE"], run_id="shared"
    )
    print(f"study {found.study_name}: {len(found.proposals)} proposals")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
