"""Where a domain's rows come from, and adapters that read them into raw records for curation.

A source is either the synthetic suite or a local path holding one of:

- JSONL with the :class:`~modomodo.data.schema.Example` columns, the image as base64 text in
  ``image`` or as a file name (relative to the JSONL's folder) in ``image_path``;
  an image file outside the source's folder is an error unless the source allows
  ``external_images`` (a data file must not make curation read arbitrary files);
- Parquet with the Example columns (a shard is one), the image as binary or ``{bytes, path}``;
- a ``datasets.save_to_disk`` folder with the paper's columns ``image``, ``problem``,
  ``solution`` (for a ``DatasetDict``, point at one split's folder).

Adapters only read and map columns; they never judge a row. A row that cannot even be parsed becomes
a :class:`Record` with an ``error``, so curation quarantines it instead of aborting. The paper-style
columns are normalised here: an ``<answer>`` wrapper is removed from the solution, a templated
reasoning instruction is cut from the problem, options are read from ``A. ...`` lines of an mc
problem, and the answer kind is inferred when neither the row nor the spec gives it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from modomodo.data.answers import parse_boxes
from modomodo.data.prompts import OPTION_LETTERS, strip_instruction
from modomodo.data.schema import ANSWER_KINDS, AnswerKind

SourceKind = Literal["synthetic", "path"]
_ANSWER_TAG = re.compile(r"\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_OPTION_LINE = re.compile(rf"^\s*\(?([{OPTION_LETTERS}])[.)]\s*(\S.*?)\s*$", re.MULTILINE)
_LOOKS_LIKE_BOXES = re.compile(r"\s*\[\s*(\[|\{|[-+]?(\d|nan|inf))", re.IGNORECASE)
"""A solution that opens like a box list: ``[[``, ``[{`` or ``[`` and a number."""
_LETTER = re.compile(rf"\(?([{OPTION_LETTERS}])[.)]?")


class SourceError(ValueError):
    """A source cannot be read at all (missing path, unknown format); a config or storage problem."""


@dataclass(frozen=True)
class SourceSpec:
    """Where one domain's rows come from."""

    kind: SourceKind
    """``synthetic`` (the suite's generator named like the domain) or ``path``."""
    n_train: int = 0
    """Synthetic only: training examples to generate."""
    n_test: int = 0
    """Synthetic only: test examples to generate."""
    path: str | Path | None = None
    """Path only: the rows (JSONL, Parquet or a ``save_to_disk`` folder); training rows unless
    ``test_fraction`` carves a test split out of them."""
    test_path: str | Path | None = None
    """Path only: rows of the test split, in any of the same formats."""
    test_fraction: float = 0.0
    """Path only, without ``test_path``: share of ``path``'s rows sent to test, chosen by a hash of
    each row's content (stable under reordering, and identical rows always land together)."""
    answer_kind: AnswerKind | None = None
    """Path only: answer kind of rows that do not name one; inferred per row when unset."""
    external_images: bool = False
    """Path only: image files named by rows may lie outside the source's folder (absolute too)."""
    layout: str | None = None
    """Path only: the published layout its rows are in (``modomodo.data.layouts``); None reads
    the Example columns or the paper's ``image, problem, solution``."""
    frame: str | None = None
    """Path only, with a layout: the frame its boxes are written in; None keeps the layout's."""
    steps: tuple[tuple[str, Mapping[str, int]], ...] = ()
    """Path only: preprocessing steps run on ``path`` and ``test_path`` alike, in order
    (``modomodo.data.source_steps.STEPS``)."""

    def __post_init__(self) -> None:
        for name in ("path", "test_path"):  # accept Path objects, store text (reports are JSON)
            if isinstance(getattr(self, name), Path):
                object.__setattr__(self, name, str(getattr(self, name)))
        if self.kind == "synthetic":
            if self.n_train < 0 or self.n_test < 0 or self.n_train + self.n_test == 0:
                raise SourceError(
                    f"synthetic source: n_train, n_test must be >= 0 with a positive sum, got {self}"
                )
            if (
                self.path
                or self.test_path
                or self.test_fraction
                or self.answer_kind
                or self.external_images
                or self.layout
                or self.frame
                or self.steps
            ):
                raise SourceError(
                    "synthetic source: path, test_path, test_fraction, answer_kind, external_images, "
                    "layout, frame and steps do not apply"
                )
        elif self.kind == "path":
            if not self.path and not self.test_path:
                raise SourceError(
                    "path source: 'path' is required (or 'test_path' alone, for a test-only source)"
                )
            if self.n_train or self.n_test:
                raise SourceError("path source: n_train/n_test apply to synthetic sources only")
            if not 0.0 <= self.test_fraction < 1.0 or (self.test_fraction and self.test_path):
                raise SourceError("path source: test_fraction must be in [0, 1) and excludes test_path")
            if self.answer_kind is not None and self.answer_kind not in ANSWER_KINDS:
                raise SourceError(
                    f"path source: answer_kind must be one of {ANSWER_KINDS}, got {self.answer_kind!r}"
                )
        else:
            raise SourceError(f"source kind must be 'synthetic' or 'path', got {self.kind!r}")

    def to_json(self) -> dict[str, Any]:
        """The fields that apply to this kind, for reports."""
        if self.kind == "synthetic":
            return {"kind": self.kind, "n_train": self.n_train, "n_test": self.n_test}
        return {
            "kind": self.kind,
            "path": self.path,
            "test_path": self.test_path,
            "test_fraction": self.test_fraction,
            "answer_kind": self.answer_kind,
            "external_images": self.external_images,
            "layout": self.layout,
            "frame": self.frame,
            "steps": [[name, dict(params)] for name, params in self.steps],
        }


@dataclass(frozen=True)
class Record:
    """One row as its source delivered it: Example fields by name, any of them missing or malformed."""

    fields: Mapping[str, Any]
    origin: str
    """Where the row came from, for messages: ``file.jsonl:17``."""
    error: str | None = None
    """Set when the row could not be parsed at all; curation quarantines it with this detail."""


def read_records(
    path: str | Path, *, answer_kind: AnswerKind | None = None, external_images: bool = False
) -> Iterator[Record]:
    """The rows at ``path`` (format chosen by its shape), normalised by :func:`normalise_fields`.

    The source is checked at once (a missing path, an unknown format, an unreadable Parquet file or
    dataset folder raise :class:`SourceError` here, before any row is read); rows are read lazily.
    """
    return (
        record if record.error else Record(normalise_fields(record.fields, answer_kind), record.origin)
        for record in read_raw_records(path, external_images=external_images)
    )


def read_raw_records(path: str | Path, *, external_images: bool = False) -> Iterator[Record]:
    """The rows at ``path`` as stored, images unpacked to bytes; :func:`read_records` without the
    normalisation (the published-layout adapters in :mod:`modomodo.data.layouts` map columns)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    # Image files named by rows must lie in the source's folder unless the config allows others.
    images = None if external_images else (path if path.is_dir() else path.parent).resolve()
    if path.is_dir():
        rows = _hf_rows(path, images)
    elif path.suffix == ".jsonl":
        rows = _jsonl_rows(path, images)
    elif path.suffix == ".parquet":
        rows = _parquet_rows(path, images)
    else:
        raise SourceError(f"{path}: expected a .jsonl or .parquet file or a save_to_disk folder")
    return rows


def normalise_fields(fields: Mapping[str, Any], answer_kind: AnswerKind | None = None) -> dict[str, Any]:
    """Map a row in the paper's conventions onto the schema's (see the module docstring)."""
    out = dict(fields)
    if isinstance(out.get("solution"), str):
        wrapped = _ANSWER_TAG.fullmatch(out["solution"])
        out["solution"] = (wrapped.group(1) if wrapped else out["solution"]).strip()
    if isinstance(out.get("problem"), str):
        out["problem"] = strip_instruction(out["problem"])
    if out.get("answer_kind") is None:
        out["answer_kind"] = answer_kind or infer_answer_kind(out)
    if out["answer_kind"] == "mc" and not out.get("options") and isinstance(out.get("problem"), str):
        out["options"] = options_in(out["problem"])
    return out


def infer_answer_kind(fields: Mapping[str, Any]) -> AnswerKind | None:
    """``box`` if the solution reads as boxes, ``mc`` if it is a letter and the problem lists options,
    else ``text``; ``None`` when there is no solution to look at."""
    solution = fields.get("solution")
    if not isinstance(solution, str):
        return None
    if parse_boxes(solution) is not None or _LOOKS_LIKE_BOXES.match(solution):
        # A malformed box list ([nan, 1, 30, 30], a trailing comma) stays a box answer, so curation
        # quarantines it as bad_box instead of keeping it as a text answer no reward can score.
        return "box"
    has_options = bool(fields.get("options")) or bool(options_in(str(fields.get("problem", ""))))
    return "mc" if has_options and _LETTER.fullmatch(solution.strip()) else "text"


def options_in(problem: str) -> tuple[str, ...]:
    """Option texts listed as ``A. text`` / ``(A) text`` / ``A) text`` lines, if they run A, B, C..."""
    found = _OPTION_LINE.findall(problem)
    letters = "".join(letter for letter, _ in found)
    return tuple(text for _, text in found) if len(found) >= 2 and OPTION_LETTERS.startswith(letters) else ()


def _jsonl_rows(path: Path, images: Path | None) -> Iterator[Record]:
    with path.open("rb") as lines:  # bytes, so one line of broken UTF-8 spoils only itself
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                yield _jsonl_record(raw, path, f"{path}:{number}", images)


def _jsonl_record(line: bytes, path: Path, origin: str, images: Path | None) -> Record:
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Record({}, origin, f"not JSON: {exc}")
    except RecursionError:
        return Record({}, origin, "JSON nested too deeply")
    if not isinstance(row, dict):
        return Record({}, origin, f"not a JSON object: {type(row).__name__}")
    if isinstance(row.get("image_path"), str) and not isinstance(row.get("image"), str):
        outside = _outside(path.parent / row["image_path"], images)
        if outside:
            return Record({**row, "image": None}, origin, outside)
    image, error = _jsonl_image(row, path.parent)
    if image is None and error is None and "image" not in row:
        return Record(row, origin)  # no image column at all: a layout names it as missing
    return Record({**row, "image": image}, origin, error)


def _outside(file: Path, images: Path | None) -> str | None:
    """Why ``file`` may not be read (it leaves the allowed folder ``images``), or None."""
    if images is None or file.resolve().is_relative_to(images):
        return None
    return (
        f"image file {file} lies outside the source's folder {images}; set the domain's "
        "external_images: true to allow it"
    )


def _jsonl_image(row: dict[str, Any], folder: Path) -> tuple[bytes | None, str | None]:
    if isinstance(row.get("image"), str):
        try:
            return base64.b64decode(row["image"], validate=True), None
        except ValueError as exc:  # binascii.Error, or a non-ASCII string (a plain ValueError)
            return None, f"image is not base64: {exc}"
    if isinstance(row.get("image_path"), str):
        file = folder / row["image_path"]
        return (file.read_bytes(), None) if file.is_file() else (None, f"image_path {file} does not exist")
    return None, None  # missing: validation reports the missing field


def _parquet_rows(path: Path, images: Path | None) -> Iterator[Record]:
    try:
        # pre_buffer (pyarrow's default) keeps every row group it has read cached until the file
        # is closed: reading a 12,500-row source of 50 KiB images grew to 650 MiB (measured).
        parquet = pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    # Small batches: each row becomes Python objects (image bytes included) only when curation takes it.
    rows = (row for batch in parquet.iter_batches(batch_size=32) for row in batch.to_pylist())
    return (_with_image_bytes(row, f"{path}#{index}", path.parent, images) for index, row in enumerate(rows))


def _hf_rows(path: Path, images: Path | None) -> Iterator[Record]:
    import datasets  # heavy; only this adapter needs it

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: not a datasets.save_to_disk folder ({exc})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            raise SourceError(
                f"{path}: a DatasetDict with splits {sorted(loaded)}; point at one split's folder"
            )
        loaded = next(iter(loaded.values()))
    for name, feature in loaded.features.items():  # every image column (MMMU has image_1..image_7)
        if isinstance(feature, datasets.Image):
            loaded = loaded.cast_column(name, datasets.Image(decode=False))  # keep the encoded bytes
    return (_with_image_bytes(row, f"{path}#{index}", path, images) for index, row in enumerate(loaded))


def _with_image_bytes(row: dict[str, Any], origin: str, folder: Path, images: Path | None) -> Record:
    """Unpack every image stored as ``{bytes, path}`` (the datasets Image convention; ``image`` and
    any other column holding one); a relative ``path`` is relative to the source's folder."""
    row = dict(row)
    for column, image in row.items():
        if not (isinstance(image, dict) and (column == "image" or set(image) == {"bytes", "path"})):
            continue
        file = folder / image["path"] if isinstance(image.get("path"), str) and image["path"] else None
        if image.get("bytes") is not None:
            row[column] = image["bytes"]
        elif file is not None and _outside(file, images):
            return Record({**row, column: None}, origin, _outside(file, images))
        elif file is not None and file.is_file():
            row[column] = file.read_bytes()
        else:
            return Record(
                {**row, column: None},
                origin,
                f"{column} has neither bytes nor a readable path: {image.get('path')!r}",
            )
    return Record(row, origin)
