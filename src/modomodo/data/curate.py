"""The curate stage: load each domain's rows, validate, normalise, quarantine, split, write shards.

Output folder (written once; it must be empty or absent)::

    <out>/<domain>/<split>-00000.parquet   shards (see ``shards.py``), split = train | test
    <out>/quarantine.jsonl                 one line per rejected row: id, domain, split, reason,
                                           detail, origin and the row's non-image fields
    <out>/curation.json                    :class:`CurationReport`: kept rows, quarantine counts by
                                           reason, every shard's SHA-256, seed, generator version

A bad row never aborts the run and is never dropped silently: it goes to quarantine with one of the
:data:`QUARANTINE_REASONS`. Only a source that cannot be read at all (a missing path, a Parquet file
corrupt past some row) stops the run, with a :class:`CurationError` naming it. The output is built in
a temporary sibling folder and renamed into place at the end, so a run that stops leaves nothing
behind and can simply be rerun. Normalisation: images become RGB PNG (re-encoded only when they are not
one already, or when resized), mc solutions become their option letter, box solutions the canonical
``[{'Position': [x1, y1, x2, y2], 'Confidence': 1}]`` in the pixel frame of the stored image.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
from PIL import Image

from modomodo.data.draw import encode_png
from modomodo.data.prompts import OPTION_LETTERS, format_boxes
from modomodo.data.schema import ANSWER_KINDS, Example
from modomodo.data.shards import WrittenShard, encode_meta, read_shard, sha256_file, write_shard
from modomodo.data.sources import Record, SourceSpec, read_records
from modomodo.data.synthetic import GENERATOR_VERSION, SPLITS, UnknownTaskError, check_task, generate
from modomodo.rewards.boxes import parse_boxes
from modomodo.rewards.matching import choice_index

REPORT_FILE = "curation.json"
QUARANTINE_FILE = "quarantine.jsonl"
REPORT_FORMAT = "modomodo-curation/1"

QUARANTINE_REASONS: dict[str, str] = {
    "unreadable_row": "the source could not parse the row at all",
    "missing_field": "id, image, problem, solution or answer_kind is missing or not text",
    "unknown_domain": "the row names a domain that no source defines",
    "domain_mismatch": "the row names another source's domain",
    "bad_image": "the image bytes do not decode",
    "image_size": "an image side is outside [min_side, max_side]",
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


class CurationError(ValueError):
    """The curate stage cannot run (bad output folder, unknown generator) or its output is corrupt."""


class Rejected(ValueError):
    """A row fails validation; ``reason`` is a key of :data:`QUARANTINE_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CurationLimits:
    """What a valid row looks like, and how images are normalised."""

    max_side: int = 4096
    """Largest allowed image side in pixels (checked before the pixels are decoded)."""
    min_side: int = 8
    """Smallest allowed image side in pixels."""
    resize_long_side: int | None = None
    """Shrink images whose longer side exceeds this, keeping the aspect ratio, and rescale their
    boxes (the paper uses 640 for LISA and GeoQAV); ``None`` keeps sizes."""
    max_problem_chars: int = 8000
    """Longest allowed problem text."""
    max_solution_chars: int = 4000
    """Longest allowed solution text."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_side <= self.max_side:
            raise CurationError(
                f"limits: need 1 <= min_side <= max_side, got {self.min_side}, {self.max_side}"
            )
        if self.resize_long_side is not None and self.resize_long_side < self.min_side:
            raise CurationError(f"limits: resize_long_side {self.resize_long_side} is below min_side")


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
    format: str = REPORT_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CurationReport:
        if data.get("format") != REPORT_FORMAT:
            raise CurationError(f"not a {REPORT_FORMAT} report (format {data.get('format')!r})")
        return cls(
            seed=data["seed"],
            generator_version=data["generator_version"],
            limits=CurationLimits(**data["limits"]),
            sources=data["sources"],
            rows=data["rows"],
            quarantined=data["quarantined"],
            shards=tuple(ShardEntry(**s) for s in data["shards"]),
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
) -> CurationReport:
    """Curate every domain of ``sources`` (domain name -> where its rows come from) into ``out_dir``."""
    from modomodo.config import PLAIN_NAME

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CurationError(f"{out_dir}: output folder is not empty; curate writes a fresh folder")
    if shard_rows < 1:
        raise CurationError(f"shard_rows must be >= 1, got {shard_rows}")
    for domain in sources:
        if not isinstance(domain, str) or not PLAIN_NAME.fullmatch(domain):
            raise CurationError(f"domain name {domain!r} is not a plain identifier; it names a folder")
    streams = {domain: _open_source(domain, sources[domain], seed) for domain in sorted(sources)}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.curating-", dir=out_dir.parent))
    try:
        run = _Run(building, set(sources), sources, limits, shard_rows)
        with (building / QUARANTINE_FILE).open("w", encoding="utf-8") as quarantine:
            for domain, stream in streams.items():
                try:
                    for split, record in stream:
                        run.take(domain, split, record, quarantine)
                except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
                    raise CurationError(
                        f"source {domain!r} ({sources[domain].path}) could not be read to the end: "
                        f"{type(exc).__name__}: {exc}; nothing was written"
                    ) from exc
        report = run.finish(seed)
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
    report = CurationReport.load(out_dir)
    if domain not in report.rows:
        raise CurationError(f"{out_dir}: no domain {domain!r}; curated: {sorted(report.rows)}")
    examples: list[Example] = []
    for shard in report.shards_of(domain, split):
        path = Path(out_dir) / shard.path
        if verify and sha256_file(path) != shard.sha256:
            raise CurationError(f"{path}: SHA-256 differs from the report; the shard changed after curation")
        examples.extend(read_shard(path))
    return examples


def validate_record(
    fields: Mapping[str, Any], *, domain: str, known_domains: set[str], limits: CurationLimits
) -> Example:
    """Check and normalise one row of ``domain``; raises :class:`Rejected` naming the first problem."""
    for name in ("id", "image", "problem", "solution", "answer_kind"):
        if fields.get(name) is None:
            raise Rejected("missing_field", f"no {name}")
    example_id, problem, solution = fields["id"], fields["problem"], fields["solution"]
    if not all(isinstance(v, str) for v in (example_id, problem, solution)) or not example_id.strip():
        raise Rejected("missing_field", "id, problem and solution must be strings and id non-blank")
    row_domain = fields.get("domain") or domain
    if not isinstance(row_domain, str) or row_domain not in known_domains:
        raise Rejected("unknown_domain", f"domain {row_domain!r} is not one of {sorted(known_domains)}")
    if row_domain != domain:
        raise Rejected("domain_mismatch", f"row of domain {row_domain!r} came from the source of {domain!r}")
    for name in ("id", "problem", "solution"):
        _check_unicode(fields[name], name)
    problem, solution = problem.strip(), solution.strip()
    _check_text(problem, "problem", limits.max_problem_chars)
    _check_text(solution, "solution", limits.max_solution_chars)
    kind = fields["answer_kind"]
    if kind not in ANSWER_KINDS:
        raise Rejected("bad_answer_kind", f"answer_kind {kind!r} is not one of {ANSWER_KINDS}")
    options = _options(fields.get("options"), kind)
    meta = _meta(fields.get("meta"))
    image, original, stored = _image(fields["image"], limits)
    if kind == "mc":
        solution = _mc_letter(solution, options)
    elif kind == "box":
        solution = _box_solution(solution, original, stored)
    if stored != original:
        meta["resized_from"] = f"{original[0]}x{original[1]}"
    return Example(example_id, domain, image, problem, solution, kind, options, meta)


# --- the run ---------------------------------------------------------------------------------------


def _open_source(domain: str, spec: SourceSpec, seed: int) -> Iterator[tuple[str | None, Record]]:
    """A domain's rows as ``(split, record)``; split ``None`` means "decide by test_fraction".

    Synthetic names and paths are checked here, before anything is written.
    """
    if spec.kind == "synthetic":
        counts = {split: n for split, n in (("train", spec.n_train), ("test", spec.n_test)) if n}
        for split in counts:
            try:
                check_task(domain, split)
            except UnknownTaskError as exc:
                raise CurationError(f"source {domain!r}: {exc}") from exc
        return (
            (split, Record(_fields(ex), f"synthetic:{ex.id}"))
            for split, n in counts.items()
            for ex in generate(domain, split, n, seed)
        )
    options = {"answer_kind": spec.answer_kind, "external_images": spec.external_images}
    train = _with_ids(read_records(spec.path, **options), domain, "row")
    if spec.test_path:
        test = _with_ids(read_records(spec.test_path, **options), domain, "testrow")
        return _chain(("train", train), ("test", test))
    return _chain((None if spec.test_fraction else "train", train))


def _chain(*parts: tuple[str | None, Iterator[Record]]) -> Iterator[tuple[str | None, Record]]:
    for split, records in parts:
        for record in records:
            yield split, record


def _with_ids(records: Iterator[Record], domain: str, prefix: str) -> Iterator[Record]:
    """Give rows without an id a positional one: ``{domain}-{prefix}{index:06d}``."""
    for index, record in enumerate(records):
        if record.fields.get("id") is None:
            record = Record(
                {**record.fields, "id": f"{domain}-{prefix}{index:06d}"}, record.origin, record.error
            )
        yield record


def _fields(example: Example) -> dict[str, Any]:
    return {name: getattr(example, name) for name in Example.__dataclass_fields__}


@dataclass
class _Run:
    out_dir: Path
    known_domains: set[str]
    sources: Mapping[str, SourceSpec]
    limits: CurationLimits
    shard_rows: int
    seen_ids: set[str] = field(default_factory=set)
    content: dict[str, set[bytes]] = field(default_factory=lambda: {"train": set(), "test": set()})
    buffers: dict[tuple[str, str], list[Example]] = field(default_factory=dict)
    written: list[ShardEntry] = field(default_factory=list)
    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    quarantined: Counter[tuple[str, str]] = field(default_factory=Counter)

    def take(self, domain: str, split: str | None, record: Record, quarantine: TextIO) -> None:
        try:
            if record.error:
                raise Rejected("unreadable_row", record.error)
            try:
                example = validate_record(
                    record.fields, domain=domain, known_domains=self.known_domains, limits=self.limits
                )
            except RecursionError:
                raise Rejected("bad_text", "a field is nested too deeply") from None
            content = _content_digest(example)
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
        buffer = self.buffers.setdefault((domain, split), [])
        buffer.append(example)
        if len(buffer) == self.shard_rows:
            self._flush(domain, split)

    def finish(self, seed: int) -> CurationReport:
        for domain, split in list(self.buffers):
            self._flush(domain, split)
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

    def _flush(self, domain: str, split: str) -> None:
        buffer = self.buffers.pop((domain, split), [])
        if not buffer:
            return
        index = sum(1 for s in self.written if s.domain == domain and s.split == split)
        relative = f"{domain}/{split}-{index:05d}.parquet"
        shard: WrittenShard = write_shard(buffer, self.out_dir / relative)
        self.written.append(ShardEntry(relative, domain, split, shard.rows, shard.sha256))

    def _quarantine(
        self, domain: str, split: str | None, record: Record, rejected: Rejected, out: TextIO
    ) -> None:
        self.quarantined[domain, rejected.reason] += 1
        fields = {
            k: _preview(v) for k, v in sorted(record.fields.items()) if k not in ("image", "id", "domain")
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


def _content_digest(example: Example) -> bytes:
    """Identity of a problem for overlap checks: its image bytes and problem text."""
    digest = hashlib.sha256(example.image)
    digest.update(example.problem.encode())
    return digest.digest()


def _preview(value: Any, limit: int = 500) -> Any:
    """A non-image field as quarantine shows it: valid JSON and at most ``limit`` characters."""
    if value is None or isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    try:
        text = (
            value
            if isinstance(value, str)
            else json.dumps(value, default=repr, sort_keys=True, allow_nan=True)
        )
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to show>"
    return text[:limit]


# --- field checks ----------------------------------------------------------------------------------


def _check_unicode(text: str, name: str) -> None:
    """Shards are UTF-8: a lone surrogate (which JSON's ``\\udxxx`` escapes can carry) cannot be stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Rejected("bad_text", f"the {name} is not valid Unicode: {exc.reason} at {exc.start}") from None


def _check_text(text: str, name: str, limit: int) -> None:
    if not text:
        raise Rejected(f"empty_{name}", f"the {name} is blank")
    if len(text) > limit:
        raise Rejected(f"{name}_too_long", f"the {name} has {len(text)} characters, more than {limit}")


def _options(value: Any, kind: str) -> tuple[str, ...]:
    options = () if value is None else value
    if not isinstance(options, list | tuple) or not all(isinstance(o, str) and o.strip() for o in options):
        raise Rejected(
            "bad_options", f"options must be a list of non-empty strings, got {_preview(value, 200)!r}"
        )
    for option in options:
        _check_unicode(option, "options")
    if len(options) > len(OPTION_LETTERS) or (kind == "mc" and len(options) < 2):
        raise Rejected("bad_options", f"{len(options)} options for answer kind {kind!r}")
    return tuple(o.strip() for o in options)


def _meta(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise Rejected("bad_meta", f"meta is not JSON: {exc}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected("bad_meta", f"meta must be an object, got {type(value).__name__}")
    meta = {str(k): v if isinstance(v, str) else encode_meta(v) for k, v in value.items()}
    for key, text in meta.items():
        _check_unicode(key + text, "meta")
    return meta


def _mc_letter(solution: str, options: tuple[str, ...]) -> str:
    index = choice_index(solution, options)
    if index is None:
        raise Rejected("bad_mc_answer", f"solution {solution!r} names none of the {len(options)} options")
    return OPTION_LETTERS[index]


def _box_solution(solution: str, original: tuple[int, int], stored: tuple[int, int]) -> str:
    boxes = parse_boxes(solution)
    if boxes is None:
        raise Rejected("bad_box", f"not a box list: {solution[:200]!r}")
    width, height = original
    for box in boxes:
        if not (0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height):
            raise Rejected(
                "bad_box", f"box {list(box.corners)} is empty or outside the {width}x{height} image"
            )
    if stored == original:
        return format_boxes(box.corners for box in boxes)
    sx, sy = stored[0] / width, stored[1] / height
    scaled = [(round(b.x1 * sx), round(b.y1 * sy), round(b.x2 * sx), round(b.y2 * sy)) for b in boxes]
    if any(x1 >= x2 or y1 >= y2 for x1, y1, x2, y2 in scaled):
        raise Rejected("bad_box", f"a box is thinner than a pixel after resizing to {stored[0]}x{stored[1]}")
    return format_boxes(scaled)


def _image(data: Any, limits: CurationLimits) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """Decode, bound and normalise an image; returns PNG bytes, original size and stored size."""
    if not isinstance(data, bytes | bytearray):
        raise Rejected("bad_image", f"image must be bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            size, image_format = probe.size, probe.format
    except Image.DecompressionBombError as exc:
        raise Rejected("image_size", str(exc)) from exc
    except Exception as exc:  # Pillow raises many types on corrupt bytes; the message is kept
        raise Rejected("bad_image", f"{type(exc).__name__}: {exc}") from exc
    if not all(limits.min_side <= side <= limits.max_side for side in size):
        raise Rejected("image_size", f"{size[0]}x{size[1]} is outside [{limits.min_side}, {limits.max_side}]")
    try:
        with Image.open(io.BytesIO(data)) as check:
            check.verify()  # checksums, without decoding
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            target = _target_size(size, limits.resize_long_side)
            if min(target) < limits.min_side:
                raise Rejected(
                    "image_size", f"resized to {target[0]}x{target[1]}, below min_side {limits.min_side}"
                )
            if image_format == "PNG" and image.mode == "RGB" and target == size:
                return data, size, size
            rgb = _to_rgb(image)
            if target != size:
                rgb = rgb.resize(target, Image.Resampling.BICUBIC)
            return encode_png(rgb), size, target
    except Rejected:
        raise
    except Exception as exc:  # as above: any decoder failure means the bytes are not a usable image
        raise Rejected("bad_image", f"{type(exc).__name__}: {exc}") from exc


def _target_size(size: tuple[int, int], long_side: int | None) -> tuple[int, int]:
    if long_side is None or max(size) <= long_side:
        return size
    scale = long_side / max(size)
    return (max(1, math.floor(size[0] * scale + 0.5)), max(1, math.floor(size[1] * scale + 0.5)))


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (not the black that ``convert`` leaves),
    and 16-bit grayscale scaled to 8 bits (``convert`` clips it: nearly every pixel becomes 255)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        import numpy as np

        wide = np.asarray(image, dtype=np.uint32) if image.mode != "I" else np.asarray(image)
        eight = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(eight, mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
