"""The curate stage: load each domain's rows, validate, normalise, quarantine, split, write shards.

Output folder (written once; it must be empty or absent)::

    <out>/<domain>/<split>-00000.parquet   shards (see ``shards.py``), split = train | test
    <out>/quarantine.jsonl                 one line per rejected row: id, domain, split, reason,
                                           detail, origin and the row's non-image fields
    <out>/curation.json                    :class:`CurationReport`: kept rows, quarantine counts by
                                           reason, every shard's SHA-256, seed, generator version,
                                           each source's preprocessing step counts, benchmark roles

A bad row never aborts the run and is never dropped silently: it goes to quarantine with one of the
:data:`QUARANTINE_REASONS`. Only a source that cannot be read at all (a missing path, a Parquet file
corrupt past some row) stops the run, with a :class:`CurationError` naming it. The output is built in
a temporary sibling folder and renamed into place at the end, so a run that stops leaves nothing
behind and can simply be rerun. Normalisation (``normalise_image``): an RGB PNG or a baseline RGB or
grayscale JPEG is kept byte for byte, a resized JPEG stays JPEG, any other image becomes RGB PNG; mc
solutions become their option letter, box solutions the canonical
``[{'Position': [x1, y1, x2, y2], 'Confidence': 1}]`` in the pixel frame of the stored image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from modomodo.data.record_checks import CurationError, CurationLimits, Rejected, _preview, validate_record
from modomodo.data.schema import Example
from modomodo.data.shards import ShardRows, ShardWriter, read_shard, sha256_file
from modomodo.data.source_steps import open_source
from modomodo.data.sources import Record, SourceSpec
from modomodo.data.streaming import default_workers, ordered_map
from modomodo.data.synthetic import GENERATOR_VERSION, SPLITS

REPORT_FILE = "curation.json"
QUARANTINE_FILE = "quarantine.jsonl"
REPORT_FORMAT = "modomodo-curation/2"
READABLE_FORMATS = ("modomodo-curation/1", REPORT_FORMAT)
"""/1 reports (before ``steps`` and ``benchmarks``) still load, with those fields empty."""

QUARANTINE_REASONS: dict[str, str] = {
    "unreadable_row": "the source could not parse the row at all",
    "missing_field": "id, image, problem, solution or answer_kind is missing or not text",
    "unknown_domain": "the row names a domain that no source defines",
    "domain_mismatch": "the row names another source's domain",
    "bad_image": "the image bytes do not decode (the detail names which, ``image 2``.., past the first)",
    "image_size": "an image side is outside [min_side, max_side] (named as for bad_image)",
    "empty_problem": "the problem is blank",
    "problem_too_long": "the problem exceeds max_problem_chars",
    "empty_solution": "the solution is blank",
    "solution_too_long": "the solution exceeds max_solution_chars",
    "bad_answer_kind": "answer_kind is not box, mc or text",
    "bad_options": "options are not 0-8 non-empty strings (mc: at least 2)",
    "bad_mc_answer": "the mc solution names no option",
    "bad_box": "the box solution does not parse, or a box is empty or outside the image",
    "bad_meta": "meta is not a JSON object",
    "bad_text": "a text field is not valid Unicode (a lone surrogate) or is nested too deeply",
    "duplicate_id": "an earlier row has the same id",
    "test_train_overlap": "a row repeats the image and problem of a row in the other split (train or test), which it would leak into; whichever of the two comes later is quarantined",
}
"""Every reason a row can be quarantined for, with its meaning."""


@dataclass(frozen=True)
class ShardEntry:
    """One written shard, as listed in the report."""

    path: str
    """Relative to the output folder, with ``/`` separators."""
    domain: str
    split: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class CurationReport:
    """What the curate stage wrote; saved as ``curation.json``."""

    seed: int
    generator_version: str
    limits: CurationLimits
    sources: dict[str, dict[str, Any]]
    """Each domain's :meth:`SourceSpec.to_json`."""
    rows: dict[str, dict[str, int]]
    """Kept rows by domain and split."""
    quarantined: dict[str, dict[str, int]]
    """Quarantined rows by domain and reason."""
    shards: tuple[ShardEntry, ...]
    steps: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    """Each source's preprocessing steps by split (``train``/``test``), in order:
    :meth:`StepCounts.to_json` of each (rows in and out, dropped by reason, changed, errors)."""
    benchmarks: dict[str, str] | None = None
    """The configured benchmarks and their role (``in``/``out``); None (a /1 report, or
    :func:`curate` called without them): the synthetic suite's benchmarks that have a test split."""
    format: str = REPORT_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CurationReport:
        if data.get("format") not in READABLE_FORMATS:
            raise CurationError(f"not a {REPORT_FORMAT} report (format {data.get('format')!r})")
        return cls(
            seed=data["seed"],
            generator_version=data["generator_version"],
            limits=CurationLimits(**data["limits"]),
            sources=data["sources"],
            rows=data["rows"],
            quarantined=data["quarantined"],
            shards=tuple(ShardEntry(**s) for s in data["shards"]),
            steps=data.get("steps", {}),
            benchmarks=data.get("benchmarks"),
        )

    @classmethod
    def load(cls, out_dir: str | Path) -> CurationReport:
        path = Path(out_dir) / REPORT_FILE
        if not path.is_file():
            raise CurationError(f"{path}: no curation report; run the curate stage first")
        return cls.from_json(json.loads(path.read_text()))

    def shards_of(self, domain: str, split: str) -> list[ShardEntry]:
        return [s for s in self.shards if s.domain == domain and s.split == split]


def curate(
    sources: Mapping[str, SourceSpec],
    out_dir: str | Path,
    *,
    seed: int,
    limits: CurationLimits = CurationLimits(),
    shard_rows: int = 10_000,
    benchmarks: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> CurationReport:
    """Curate every domain of ``sources`` (domain name -> where its rows come from) into ``out_dir``;
    ``benchmarks`` (name -> ``in``/``out``) are recorded in the report for the stages that read it.

    Rows stream from the sources, through their preprocessing steps, to the shards: ``workers``
    threads (default: the CPUs, at most 8) decode and normalise images, at most ``2 * workers``
    rows are in flight (as many again in ``resize_long_side``), and each open shard holds one row
    group in memory. The output does not depend on ``workers``."""
    from modomodo.config_io import PLAIN_NAME

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CurationError(f"{out_dir}: output folder is not empty; curate writes a fresh folder")
    if shard_rows < 1:
        raise CurationError(f"shard_rows must be >= 1, got {shard_rows}")
    for domain in sources:
        if not isinstance(domain, str) or not PLAIN_NAME.fullmatch(domain):
            raise CurationError(f"domain name {domain!r} is not a plain identifier; it names a folder")
    workers = workers or default_workers()
    opened = {
        domain: open_source(domain, sources[domain], seed, workers=workers) for domain in sorted(sources)
    }
    streams = {domain: stream for domain, (stream, _) in opened.items()}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.curating-", dir=out_dir.parent))
    try:
        run = _Run(building, set(sources), sources, limits, shard_rows)
        with (building / QUARANTINE_FILE).open("w", encoding="utf-8") as quarantine, run:
            for domain, stream in streams.items():
                check = partial(_check_row, domain=domain, known_domains=run.known_domains, limits=limits)
                try:
                    for (split, record), checked in ordered_map(check, stream, workers=workers):
                        run.take(domain, split, record, checked, quarantine)
                except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
                    raise CurationError(
                        f"source {domain!r} ({sources[domain].path}) could not be read to the end: "
                        f"{type(exc).__name__}: {exc}; nothing was written"
                    ) from exc
            report = replace(
                run.finish(seed),
                steps={domain: step_counts() for domain, (_, step_counts) in opened.items()},
                benchmarks=dict(benchmarks) if benchmarks is not None else None,
            )
        text = json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n"
        (building / REPORT_FILE).write_text(text)
        building.chmod(0o755)  # mkdtemp makes it private
        os.replace(building, out_dir)  # onto an absent or empty folder
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return report


def read_curated(out_dir: str | Path, domain: str, split: str, *, verify: bool = True) -> list[Example]:
    """The curated examples of one domain and split, checking each shard's SHA-256 first."""
    return [ex for path in _curated_shards(out_dir, domain, split, verify) for ex in read_shard(path)]


def open_curated(out_dir: str | Path, domain: str, split: str, *, verify: bool = True) -> ShardRows:
    """The curated examples of one domain and split as a sequence read by index from the shards
    (:class:`ShardRows`: a few row groups in memory, not the split), SHA-256 checked first."""
    return ShardRows(_curated_shards(out_dir, domain, split, verify))


def _curated_shards(out_dir: str | Path, domain: str, split: str, verify: bool) -> list[Path]:
    report = CurationReport.load(out_dir)
    if domain not in report.rows:
        raise CurationError(f"{out_dir}: no domain {domain!r}; curated: {sorted(report.rows)}")
    paths = []
    for shard in report.shards_of(domain, split):
        path = Path(out_dir) / shard.path
        if verify and sha256_file(path) != shard.sha256:
            raise CurationError(f"{path}: SHA-256 differs from the report; the shard changed after curation")
        paths.append(path)
    return paths


# --- the run ---------------------------------------------------------------------------------------


def _check_row(
    row: tuple[str | None, Record], *, domain: str, known_domains: set[str], limits: CurationLimits
) -> tuple[Example, bytes] | Rejected:
    """The part of a row's curation that needs no other row (decoding and normalising its image):
    run in parallel, so a rejection is returned rather than raised."""
    record = row[1]
    try:
        if record.error:
            raise Rejected("unreadable_row", record.error)
        try:
            example = validate_record(
                record.fields, domain=domain, known_domains=known_domains, limits=limits
            )
        except RecursionError:
            raise Rejected("bad_text", "a field is nested too deeply") from None
    except Rejected as rejected:
        return rejected
    return example, _content_digest(example)


@dataclass
class _Run:
    out_dir: Path
    known_domains: set[str]
    sources: Mapping[str, SourceSpec]
    limits: CurationLimits
    shard_rows: int
    seen_ids: set[str] = field(default_factory=set)
    content: dict[str, set[bytes]] = field(default_factory=lambda: {"train": set(), "test": set()})
    writers: dict[tuple[str, str], ShardWriter] = field(default_factory=dict)
    written: list[ShardEntry] = field(default_factory=list)
    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    quarantined: Counter[tuple[str, str]] = field(default_factory=Counter)

    def take(
        self,
        domain: str,
        split: str | None,
        record: Record,
        checked: tuple[Example, bytes] | Rejected,
        quarantine: TextIO,
    ) -> None:
        """The row's checks against the rows before it, in source order, then its shard or quarantine."""
        try:
            if isinstance(checked, Rejected):
                raise checked
            example, content = checked
            split = split or self._split_by_fraction(domain, content)
            if example.id in self.seen_ids:
                raise Rejected("duplicate_id", f"id {example.id!r} was seen before")
            # Both directions: a benchmark that sorts before a training domain is read first.
            other = "train" if split == "test" else "test"
            if content in self.content[other]:
                raise Rejected("test_train_overlap", f"the same image and problem are in a {other} split")
        except Rejected as rejected:
            self._quarantine(domain, split, record, rejected, quarantine)
            return
        self.seen_ids.add(example.id)
        self.content[split].add(content)
        self.rows[domain, split] += 1
        writer = self.writers.get((domain, split))
        if writer is None:
            index = sum(1 for s in self.written if s.domain == domain and s.split == split)
            writer = self.writers[domain, split] = ShardWriter(
                self.out_dir / _shard_path(domain, split, index)
            )
        writer.add(example)
        if writer.rows == self.shard_rows:
            self._close(domain, split)

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        """On an error, close the open shards' files (the caller removes the folder)."""
        if kind is not None:
            for writer in self.writers.values():
                writer.abort()

    def finish(self, seed: int) -> CurationReport:
        for domain, split in list(self.writers):
            self._close(domain, split)
        domains = sorted(self.known_domains)
        quarantined: dict[str, dict[str, int]] = {d: {} for d in domains}
        for (domain, reason), count in sorted(self.quarantined.items()):
            quarantined[domain][reason] = count
        return CurationReport(
            seed=seed,
            generator_version=GENERATOR_VERSION,
            limits=self.limits,
            sources={d: self.sources[d].to_json() for d in domains},
            rows={d: {s: self.rows[d, s] for s in SPLITS} for d in domains},
            quarantined=quarantined,
            shards=tuple(sorted(self.written, key=lambda s: s.path)),
        )

    def _split_by_fraction(self, domain: str, content: bytes) -> str:
        return (
            "test"
            if int.from_bytes(content[:8], "big") < self.sources[domain].test_fraction * 2**64
            else "train"
        )

    def _close(self, domain: str, split: str) -> None:
        shard = self.writers.pop((domain, split)).close()
        relative = shard.path.relative_to(self.out_dir).as_posix()
        self.written.append(ShardEntry(relative, domain, split, shard.rows, shard.sha256))

    def _quarantine(
        self, domain: str, split: str | None, record: Record, rejected: Rejected, out: TextIO
    ) -> None:
        self.quarantined[domain, rejected.reason] += 1
        fields = {
            k: _preview(v)
            for k, v in sorted(record.fields.items())
            if k not in ("image", "extra_images", "id", "domain")
        }
        line = {
            "id": _preview(record.fields.get("id")),
            "domain": domain,
            "split": split,
            "reason": rejected.reason,
            "detail": rejected.detail,
            "origin": record.origin,
            "fields": fields,
        }
        try:
            text = json.dumps(line, sort_keys=True, ensure_ascii=False, default=repr)
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: \u-escaped, the line stays valid JSON
            text = json.dumps(line, sort_keys=True, ensure_ascii=True, default=repr)
        out.write(text + "\n")


def _shard_path(domain: str, split: str, index: int) -> str:
    return f"{domain}/{split}-{index:05d}.parquet"


def _content_digest(example: Example) -> bytes:
    """Identity of a problem for overlap checks: its images' bytes and problem text (a
    single-image example's digest is the one it had before examples had several images)."""
    digest = hashlib.sha256(example.image)
    for extra in example.extra_images:  # length first: the bytes of two images cannot shift
        digest.update(len(extra).to_bytes(8, "big") + extra)
    digest.update(example.problem.encode())
    return digest.digest()


# --- field checks ----------------------------------------------------------------------------------
