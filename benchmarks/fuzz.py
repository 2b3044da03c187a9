"""Fuzz every source reader (JSONL, Parquet, ``save_to_disk``) and every registered reward with
hypothesis, and print what happened to each case.

    python benchmarks/fuzz.py [--cases 10000] [--seed 0] [--json results.jsonl]

A case ends in one of: ``ok``; a documented, clear error (``SourceError`` when a source is opened,
a row quarantined by the reader or rejected by ``validate_record`` with its reason, a reward
context refused with ``RewardConfigError``); or ``crash: <exception>``, anything else, which is a
bug. A reward value outside [0, 1] or non-finite is a crash too. tests/test_fuzz.py runs a small
sample of the same targets in CI and fails on any crash.

Inputs stay inside what the current code promises to handle; the hostile inputs of issue 13's
findings 3 and 4 (lone surrogates, 1,000-deep JSON, invalid UTF-8 inside Parquet, corrupt Parquet
pages, image paths outside the source folder) are the ``security`` work and are left out here.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from modomodo.data.curate import CurationLimits, Rejected, validate_record
from modomodo.data.sources import SourceError, read_records
from modomodo.rewards import REWARDS, RewardConfigError, RewardContext, unscorable_kinds

DOMAIN = "fuzz"
LIMITS = CurationLimits(max_side=512)


def _png(width: int, height: int, mode: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- strategies --------------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["nan", "inf", "-0", "1e999", ".5", "5.", "0x10"]),
)


@st.composite
def box_text(draw: st.DrawFn) -> str:
    """Box lists, well formed or not: the shapes a box solution or answer takes."""
    items = []
    for _ in range(draw(st.integers(0, 6))):
        coords = ", ".join(draw(numbers) for _ in range(draw(st.sampled_from([4, 4, 3, 5]))))
        items.append(draw(st.sampled_from([f"[{coords}]", f"{{'Position': [{coords}], 'Confidence': 1}}"])))
    return draw(st.sampled_from(["[{}]", "[{},]", "{}]", "[{}]]"])).format(", ".join(items))


text = st.text(max_size=120)  # hypothesis leaves out lone surrogates by default (finding 3)
solutions = st.one_of(text, box_text(), st.sampled_from(["A", "B", "(C)", "No Objects", " ", ""]))
images = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.builds(
        _png, st.integers(1, 40), st.integers(1, 40), st.sampled_from(["RGB", "L", "RGBA", "P", "I;16"])
    ),
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


FIELDS = {  # built once: hypothesis strategies are costly to construct inside a draw
    "id": st.one_of(text, st.integers(), st.none()),
    "problem": st.one_of(text, st.integers(), json_value),
    "solution": st.one_of(solutions, st.integers(), st.none()),
    "answer_kind": st.one_of(st.sampled_from(["box", "mc", "text", "bogus"]), st.none(), st.integers()),
    "options": st.one_of(st.lists(text, max_size=5), st.none(), text),
    "domain": st.one_of(st.just(DOMAIN), text, st.none()),
    "meta": st.one_of(st.dictionaries(text, text, max_size=3), json_value),
}
PRESENT = st.integers(0, 9)
IMAGE_PATHS = st.sampled_from(["img.png", "missing.png", "sub/none.png"])


finite = st.one_of(st.integers(-50, 500), st.floats(-50, 500, allow_nan=False))
valid_boxes = st.lists(st.tuples(finite, finite, finite, finite), max_size=4).map(
    lambda boxes: "[" + ", ".join(f"{{'Position': {list(b)!r}, 'Confidence': 1}}" for b in boxes) + "]"
)
letters = st.sampled_from(["A", "B", "C", "(B)", "c"])
nonblank = text.filter(str.strip)
KIND_SOLUTIONS = {"box": valid_boxes, "mc": letters, "text": nonblank}
KINDS = st.sampled_from(sorted(KIND_SOLUTIONS))
OPTION_LISTS = st.lists(nonblank, min_size=2, max_size=5)
MALFORMED = st.integers(0, 3)


@st.composite
def plausible(draw: st.DrawFn) -> dict:
    """A row of the right types whose values are odd: what most of a real source looks like."""
    kind = draw(KINDS)
    row = {
        "id": draw(nonblank),
        "problem": draw(nonblank),
        "solution": draw(KIND_SOLUTIONS[kind]),
        "answer_kind": kind,
        "options": draw(OPTION_LISTS) if kind == "mc" else [],
        "domain": DOMAIN,
        "meta": draw(st.dictionaries(text, text, max_size=3)),
    }
    return row


ROW_FIELDS = st.one_of(plausible(), plausible(), st.fixed_dictionaries({}).map(lambda _: None))


@st.composite
def rows(draw: st.DrawFn, image_as: str) -> dict:
    """A row with any of the schema's fields missing, mistyped or odd (a third of them), or a
    plausible row of odd values (two thirds)."""
    row = draw(ROW_FIELDS)
    if row is None:
        row = {name: draw(strategy) for name, strategy in FIELDS.items() if draw(PRESENT)}  # 9 in 10 present
    image = draw(images)
    if image_as == "base64":
        row["image"] = draw(st.one_of(st.just(base64.b64encode(image or b"").decode()), text))
    elif image_as == "path":
        row["image_path"] = draw(IMAGE_PATHS)
        row.pop("image", None)
    elif image_as == "hf":
        row["image"] = {"bytes": image, "path": None}
    else:
        row["image"] = image
    return row


ROWS = {kind: rows(kind) for kind in ("base64", "path", "hf")}
LINE_KINDS = st.sampled_from(["row", "row", "row", "value", "bytes", "truncated"])
ROW_IMAGES = st.sampled_from(["base64", "path"])
LINE_BYTES = st.binary(max_size=80)


@st.composite
def jsonl_files(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(LINE_KINDS)
        if kind == "row":
            lines.append(json.dumps(draw(ROWS[draw(ROW_IMAGES)])).encode())
        elif kind == "value":
            lines.append(json.dumps(draw(json_value)).encode())
        elif kind == "bytes":
            lines.append(draw(LINE_BYTES).replace(b"\n", b" "))
        else:
            whole = json.dumps(draw(ROWS["base64"])).encode()
            lines.append(whole[: draw(st.integers(0, len(whole)))])
    return lines


COLUMNS = st.sets(st.sampled_from(["id", "problem", "solution", "answer_kind", "options", "domain", "image"]))
COLUMN_TYPES = st.sampled_from(["string", "int", "binary", "null"])
STRINGS = st.one_of(solutions, st.just(DOMAIN), st.sampled_from(["box", "mc", "text"]))
INT64 = st.integers(-(2**63), 2**63 - 1)
BYTES = st.binary(max_size=32)


@st.composite
def parquet_tables(draw: st.DrawFn):
    """A Parquet table whose columns each hold one type (as Parquet requires), values odd."""
    import pyarrow as pa

    n = draw(st.integers(0, 5))
    if draw(st.booleans()):  # plausible rows, real images
        batch = [{**draw(plausible()), "image": draw(images)} for _ in range(n)]
        for row in batch:  # Parquet cannot store an empty struct; JSON text it is
            row["meta"] = json.dumps(row["meta"])
        return pa.Table.from_pylist(batch)
    columns = {}
    for name in sorted(draw(COLUMNS)):
        kind = draw(COLUMN_TYPES)
        if kind == "null":
            columns[name] = [None] * n
            continue
        values = {"string": STRINGS, "int": INT64, "binary": images if name == "image" else BYTES}[kind]
        columns[name] = [draw(values) for _ in range(n)]
    return pa.table(columns) if columns else pa.table({"x": pa.array([None] * n)})


# --- targets -----------------------------------------------------------------------------------


def _consume(path: Path) -> list[str]:
    """Read every row of the source at ``path`` and validate it; each row's outcome."""
    try:
        records = list(read_records(path))
    except SourceError:
        return ["source refused (SourceError)"]
    outcomes = []
    for record in records:
        if record.error:
            outcomes.append("row quarantined by the reader")
            continue
        try:
            validate_record(record.fields, domain=DOMAIN, known_domains={DOMAIN}, limits=LIMITS)
            outcomes.append("row ok")
        except Rejected as rejected:
            outcomes.append(f"row rejected ({rejected.reason})")
    return outcomes or ["empty source"]


def jsonl_case(lines: list[bytes], folder: Path) -> list[str]:
    (folder / "img.png").write_bytes(_png(12, 12, "RGB"))
    path = folder / "rows.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return _consume(path)


def parquet_case(table, folder: Path) -> list[str]:
    import pyarrow.parquet as pq

    path = folder / "rows.parquet"
    pq.write_table(table, path)
    return _consume(path)


def truncated_parquet_case(args, folder: Path) -> list[str]:
    """A valid file cut short or with its footer overwritten: refused when opened."""
    import pyarrow.parquet as pq

    table, cut = args
    whole = io.BytesIO()
    pq.write_table(table, whole)
    data = whole.getvalue()
    path = folder / "rows.parquet"
    path.write_bytes(data[: int(cut * (len(data) - 1))])
    return _consume(path)


def hf_case(batch: list[dict], folder: Path) -> list[str]:
    import datasets

    datasets.disable_progress_bars()
    try:
        dataset = datasets.Dataset.from_list(batch)
    except Exception:  # noqa: BLE001 (arrow cannot type this batch: not an input to read)
        dataset = datasets.Dataset.from_list([{"image": row["image"]} for row in batch])
    dataset.save_to_disk(str(folder / "ds"))
    return _consume(folder / "ds")


@st.composite
def reward_cases(draw: st.DrawFn) -> tuple:
    completion = draw(COMPLETIONS)
    if draw(MALFORMED):  # three in four: a valid context, so the reward itself is exercised
        kind = draw(KINDS)
        solution = draw(KIND_SOLUTIONS[kind])
        options = tuple(draw(OPTION_LISTS)) if kind == "mc" else ()
    else:
        kind = draw(st.sampled_from(["box", "mc", "text", "bogus"]))
        solution, options = draw(solutions), tuple(draw(st.lists(text, max_size=4)))
    return draw(REWARD_NAMES), completion, solution, kind, options


REWARD_NAMES = st.sampled_from(sorted(REWARDS))
COMPLETIONS = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda t, a: f"<think>{t}</think> <answer>{a}</answer>", text, st.one_of(solutions, valid_boxes)
    ),
    st.builds(lambda a, b: f"{a}<answer>{b}", text, box_text()),
)


def reward_case(args: tuple, folder: Path) -> list[str]:
    name, completion, solution, kind, options = args
    try:
        ctx = RewardContext(solution, kind, options)
    except RewardConfigError:
        return ["context refused (RewardConfigError)"]
    if unscorable_kinds(name, [kind]):  # misuse, which configs are checked against before training
        try:
            REWARDS[name](completion, ctx)
        except RewardConfigError:
            return ["reward on a kind it cannot score refused (RewardConfigError)"]
    value = REWARDS[name](completion, ctx)
    if type(value) is not float or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise AssertionError(f"{name} returned {value!r}")
    return ["reward in [0, 1]"]


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy
    run: Callable[[object, Path], list[str]]
    """One case: the outcome of each row (one outcome for a reward call or a refused source)."""
    share: float
    """Its part of the total case count."""


TARGETS = [
    Target("reader: JSONL (rows, values, bytes, truncated lines)", jsonl_files(), jsonl_case, 0.3),
    Target(
        "reader: Parquet (typed columns, odd values)",
        parquet_tables(),
        parquet_case,
        0.2,
    ),
    Target(
        "reader: Parquet (cut short)",
        st.tuples(parquet_tables(), st.floats(0, 0.95)),
        truncated_parquet_case,
        0.1,
    ),
    Target("reader: datasets save_to_disk", st.lists(rows("hf"), min_size=1, max_size=4), hf_case, 0.05),
    Target("rewards: every registered reward", reward_cases(), reward_case, 0.35),
]


@dataclass
class Outcome:
    target: str
    cases: int
    outcomes: Counter
    seconds: float
    first_crash: str | None = None

    @property
    def crashes(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome.startswith("crash"))


def fuzz(target: Target, cases: int, seed_value: int = 0) -> Outcome:
    """Run ``target`` on ``cases`` generated inputs; every outcome counted, crashes included."""
    result = Outcome(target.name, 0, Counter(), 0.0)
    start = time.perf_counter()

    @seed(seed_value)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def check(value):
        with tempfile.TemporaryDirectory() as folder:
            try:
                outcomes = target.run(value, Path(folder))
            except Exception as exc:  # noqa: BLE001 (an undocumented error is what we count)
                outcomes = [f"crash: {type(exc).__name__}"]
                if result.first_crash is None:
                    result.first_crash = f"{type(exc).__name__}: {exc} on {value!r}"[:2000]
        result.cases += 1
        result.outcomes.update(outcomes)

    check()
    result.seconds = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in all, shared by the targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="append one JSON line per target (for reliability_report)")
    args = parser.parse_args(argv)
    results = [fuzz(t, max(1, round(args.cases * t.share)), args.seed) for t in TARGETS]
    width = max(len(r.target) for r in results)
    print(f"{'target':<{width}}  {'cases':>6}  {'s':>6}  outcomes")
    for r in results:
        outcomes = "; ".join(f"{o}: {n}" for o, n in r.outcomes.most_common())
        print(f"{r.target:<{width}}  {r.cases:>6}  {r.seconds:>6.1f}  {outcomes}")
        if r.first_crash:
            print(f"  first crash: {r.first_crash}")
    print(
        f"{'total':<{width}}  {sum(r.cases for r in results):>6}  crashes: {sum(r.crashes for r in results)}"
    )
    if args.json:
        with args.json.open("a", encoding="utf-8") as out:
            for r in results:
                line = {
                    "what": f"fuzz {r.target} (benchmarks/fuzz.py)",
                    "cases": r.cases,
                    "outcome": "; ".join(f"{o}: {n}" for o, n in r.outcomes.most_common()),
                    "crashes": r.crashes,
                    "time": time.time(),
                }
                out.write(json.dumps(line, sort_keys=True) + "\n")
    return 1 if any(r.crashes for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
