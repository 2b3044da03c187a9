"""Published dataset layouts: a registry of adapters that map one row onto the Example fields.

A *layout* names the columns a dataset is published with (the paper's training sets, the Hub and
lmms-eval forms of the benchmarks) and an ``adapt`` function that turns one row into the fields
:func:`modomodo.data.curate.validate_record` checks (``id``, ``image``, ``problem``, ``solution``,
``answer_kind``, ``options``, ``meta``). Layouts register themselves by name, verl style::

    @register_layout(Layout("chartqa", required={"image", "query", "label"}, adapt=..., answer_kinds={"text"}))

Box answers are written in a *frame* that each layout declares (and a source may override):
``pixel`` (pixels of the stored image), ``unit`` (0-1 of the image's width and height) or
``qwen1000`` (Qwen2-VL's 0-1000 grid). :func:`boxes_to_pixels` converts them to pixels of the
image, which is what the schema stores; a coordinate outside the declared frame's range is an
error naming the frame, never a guess.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from PIL import ExifTags, Image

from modomodo.data.answers import Box
from modomodo.data.prompts import format_boxes
from modomodo.data.schema import ANSWER_KINDS
from modomodo.data.sources import Record, SourceError

Frame = Literal["pixel", "unit", "qwen1000"]
FRAMES: dict[str, float | None] = {"pixel": None, "unit": 1.0, "qwen1000": 1000.0}
"""Each box frame and the value its coordinates span (``None``: the image's own pixel size)."""
COORD_DECIMALS = 2
"""Pixel coordinates converted from another frame are rounded to this many decimals."""


class LayoutError(SourceError):
    """A layout is unknown or misused, or a source's columns are not the layout's (raised before
    any row is read when the source has a schema: saved datasets and Parquet)."""


class RowError(ValueError):
    """One row cannot be adapted; it becomes a :class:`Record` with this message as ``error``."""


@dataclass(frozen=True)
class AdaptContext:
    """What an adapter knows besides the row."""

    layout: str
    frame: Frame | None
    """The frame the row's boxes are written in (the source's override or the layout's default)."""


Adapter = Callable[[Mapping[str, Any], AdaptContext], dict[str, Any]]


@dataclass(frozen=True)
class Layout:
    """One published column layout and how its rows become Example fields."""

    name: str
    """Registry key, e.g. ``chartqa``; also the prefix of ids taken from the row."""
    required: frozenset[str]
    """Columns every row must have."""
    adapt: Adapter
    """Maps a row (image columns already bytes) onto Example fields; raises :class:`RowError`."""
    answer_kinds: frozenset[str]
    """The answer kinds its rows become (a config checks the benchmark's metric can score them)."""
    optional: frozenset[str] = frozenset()
    """Columns a row may have besides the required ones; anything else is unexpected."""
    any_of: tuple[frozenset[str], ...] = ()
    """Groups of columns of which a row needs at least one (MathVista: ``image``/``decoded_image``)."""
    frame: Frame | None = None
    """Default box frame of the layout's answers; ``None`` for layouts without boxes."""
    metric: str = "exact_match"
    """The benchmark's customary metric (a name in :mod:`modomodo.evaluation.metrics`); the paper
    itself scores every benchmark by exact match (mean IoU for boxes)."""
    description: str = ""
    """One line: which dataset publishes this layout."""
    multi_image: bool = False
    """Its rows may become examples with several images (MMMU): a benchmark layout only, since
    training takes single-image examples (a config refuses it for a training domain)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", frozenset(self.required))
        object.__setattr__(self, "optional", frozenset(self.optional))
        object.__setattr__(self, "answer_kinds", frozenset(self.answer_kinds))
        if not self.answer_kinds or not self.answer_kinds <= set(ANSWER_KINDS):
            raise LayoutError(
                f"layout {self.name!r}: answer_kinds must be a non-empty subset of {ANSWER_KINDS}"
            )
        object.__setattr__(self, "any_of", tuple(frozenset(group) for group in self.any_of))
        if self.frame is not None and self.frame not in FRAMES:
            raise LayoutError(f"layout {self.name!r}: frame must be one of {sorted(FRAMES)}")

    @property
    def columns(self) -> frozenset[str]:
        """Every column the layout knows."""
        return self.required | self.optional | frozenset().union(*self.any_of)

    def column_problem(self, columns: Iterable[str]) -> str | None:
        """What is wrong with a row or schema having ``columns`` (missing and unexpected ones), or None."""
        present = set(columns)
        missing = sorted(self.required - present)
        missing += [" or ".join(sorted(group)) for group in self.any_of if not group & present]
        unexpected = sorted(present - self.columns)
        if not missing and not unexpected:
            return None
        parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else ""]
        return f"columns differ from layout {self.name!r}: " + "; ".join(p for p in parts if p)


_LAYOUTS: dict[str, Layout] = {}
LAYOUTS: Mapping[str, Layout] = MappingProxyType(_LAYOUTS)
"""Every registered layout by name (read-only; :func:`register_layout` is the way in)."""


def register_layout(layout: Layout) -> Layout:
    """Add ``layout`` to the registry under its name (unique)."""
    if layout.name in _LAYOUTS:
        raise LayoutError(f"layout {layout.name!r} is already registered")
    _LAYOUTS[layout.name] = layout
    return layout


def get_layout(name: str) -> Layout:
    """The layout registered as ``name``; an error listing the known ones otherwise."""
    if name not in _LAYOUTS:
        raise LayoutError(f"unknown layout {name!r}; known layouts: {sorted(_LAYOUTS)}")
    return _LAYOUTS[name]


def adapt_row(layout: Layout, row: Mapping[str, Any], origin: str, *, frame: Frame | None = None) -> Record:
    """One row as Example fields, or a :class:`Record` whose ``error`` says why it cannot be.

    Never raises on a bad row: curation quarantines error records as ``unreadable_row``.
    """
    if frame is not None and frame not in FRAMES:
        raise LayoutError(f"frame must be one of {sorted(FRAMES)}, got {frame!r}")
    row = dict(row)
    if isinstance(row.get("image"), bytes) and "image_path" in row:
        del row["image_path"]  # the JSONL reader already read the named file into ``image``
    problem = layout.column_problem(row)
    if problem is not None:
        return Record(_preview_row(row), origin, problem)
    try:
        fields = layout.adapt(row, AdaptContext(layout.name, frame or layout.frame))
    except RowError as exc:
        return Record(_preview_row(row), origin, f"{layout.name}: {exc}")
    except RecursionError:
        return Record(_preview_row(row), origin, f"{layout.name}: a field is nested too deeply")
    return Record(fields, origin)


def _preview_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as quarantine should show it: image bytes left out (they are not text)."""
    return {k: v for k, v in row.items() if not isinstance(v, bytes | bytearray)}


# --- helpers adapters share ---------------------------------------------------------------------


def text(row: Mapping[str, Any], column: str, *, allow_empty: bool = False) -> str:
    """``row[column]`` as a string; :class:`RowError` if it is not one (or is blank)."""
    value = row.get(column)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise RowError(f"{column} must be a non-empty string, got {_short(value)}")
    return value


def string_list(value: Any, column: str) -> list[str]:
    """A list of strings (a NumPy/Arrow list arrives as a list or tuple); :class:`RowError` otherwise."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise RowError(f"{column} must be a list of strings, got {_short(value)}")
    return list(value)


def image_bytes(row: Mapping[str, Any], column: str) -> bytes:
    """The encoded image in ``column``; :class:`RowError` if it holds none."""
    value = row.get(column)
    if not isinstance(value, bytes | bytearray) or not value:
        raise RowError(f"{column} holds no image bytes (got {type(value).__name__})")
    return bytes(value)


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of the image as shown, from its header: an EXIF orientation that turns it
    by 90 degrees swaps them, as curation applies it (``record_checks.normalise_image``, the way the
    ``datasets`` Image feature decodes), so a 0-1 or 0-1000 box is read in the frame it is stored
    in. :class:`RowError` if it does not decode."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            turned = image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
            return (height, width) if turned else (width, height)
    except Exception as exc:  # Pillow raises many types on corrupt bytes; the message is kept
        raise RowError(f"the image does not decode: {type(exc).__name__}: {exc}") from None


def boxes_to_pixels(
    boxes: Sequence[Sequence[float]], frame: Frame | None, size: tuple[int, int]
) -> list[tuple[float, float, float, float]]:
    """Corner boxes written in ``frame`` as pixel boxes of an image of ``size`` (width, height).

    A coordinate outside the frame's span (a 0-1000 box with 1200, a 0-1 box with 3.5) is a
    :class:`RowError` that names the frame: the data is in another frame than declared.
    """
    if frame is None or frame not in FRAMES:
        raise RowError(f"the layout declares no box frame; set one of {sorted(FRAMES)}")
    span = FRAMES[frame]
    width, height = size
    # Pixels stay as they are; other frames scale each axis by the image's side over the span.
    sx, sy = (1.0, 1.0) if span is None else (width / span, height / span)
    out = []
    for box in boxes:
        if len(box) != 4:
            raise RowError(f"a box needs 4 coordinates, got {list(box)}")
        if span is not None and not all(0 <= v <= span for v in box):
            raise RowError(
                f"box {list(box)} lies outside the {frame} frame (0-{span:g}) declared for this source; "
                "is the declared frame right?"
            )
        x1, y1, x2, y2 = (float(v) for v in box)
        if span is not None:
            x1, y1, x2, y2 = (round(v, COORD_DECIMALS) for v in (x1 * sx, y1 * sy, x2 * sx, y2 * sy))
        out.append((x1, y1, x2, y2))
    return out


def pixel_solution(boxes: Sequence[Box | Sequence[float]], frame: Frame | None, image: bytes) -> str:
    """The canonical box solution in pixels of ``image`` (see :func:`boxes_to_pixels`)."""
    corners = [b.corners if isinstance(b, Box) else tuple(b) for b in boxes]
    return format_boxes(boxes_to_pixels(corners, frame, image_size(image)))


@dataclass(frozen=True)
class Fields:
    """Example fields an adapter builds; :meth:`to_dict` is what curation validates."""

    image: bytes
    problem: str
    solution: str
    answer_kind: str
    options: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    """``None``: curation numbers the row (``{domain}-row000042``)."""
    extra_images: tuple[bytes, ...] = ()
    """Encoded images after ``image``, in order (MMMU); curation checks each as it checks ``image``."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "image": self.image,
            "problem": self.problem,
            "solution": self.solution,
            "answer_kind": self.answer_kind,
            "options": list(self.options),
            "meta": dict(self.meta),
        }
        if self.id is not None:
            out["id"] = self.id
        if self.extra_images:
            out["extra_images"] = list(self.extra_images)
        return out


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
