"""A CI sample of benchmarks/fuzz.py: every source reader and every reward on hypothesis-generated
input ends in a documented outcome (``ok``, a quarantined or rejected row, ``SourceError``,
``RewardConfigError``), never an undocumented exception. The benchmark runs 10,000+ cases."""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path

import pytest
from reliability import record_result

from modomodo.data.sources import read_records

ROOT = Path(__file__).resolve().parents[1]
CASES = 40  # per target; the benchmark script runs the same targets at scale


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "benchmarks" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz()


@pytest.mark.parametrize("target", fuzz.TARGETS, ids=lambda t: t.name.replace(" ", "-"))
def test_fuzzed_input_ends_in_a_documented_outcome(target):
    cases = CASES // 4 if "save_to_disk" in target.name else CASES  # datasets is slow per case
    result = fuzz.fuzz(target, cases, seed_value=1)
    assert result.crashes == 0, result.first_crash
    assert result.cases >= cases // 2, "hypothesis generated too few distinct cases"
    if "cut short" in target.name:  # the file is refused as a whole when opened
        assert set(result.outcomes) == {"source refused (SourceError)"}, result.outcomes
    else:  # some input got past the first check: the fuzzing reached the validation
        assert any(not o.startswith(("crash", "source refused")) for o in result.outcomes), result.outcomes
    record_result(
        f"fuzz {target.name} (CI sample)",
        cases=result.cases,
        outcome="; ".join(f"{o}: {n}" for o, n in result.outcomes.most_common()),
    )


def test_a_non_ascii_image_string_is_quarantined_not_a_crash(tmp_path):
    # Found by benchmarks/fuzz.py: b64decode raises a plain ValueError (not binascii.Error) on a
    # non-ASCII str, which escaped the reader and aborted the whole source.
    path = tmp_path / "rows.jsonl"
    good = base64.b64encode(b"png bytes").decode()
    path.write_text(
        f'{{"id": "a", "image": "é{good}"}}\n{{"id": "b", "image": "{good}"}}\n', encoding="utf-8"
    )
    first, second = read_records(path)
    assert first.error and first.error.startswith("image is not base64")
    assert second.error is None and second.fields["image"] == b"png bytes"
