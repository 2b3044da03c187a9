"""One curated row: checked and normalised, or rejected with a reason the quarantine records."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageOps, JpegImagePlugin

from modomodo.data.answers import choice_index, parse_boxes
from modomodo.data.draw import encode_png
from modomodo.data.prompts import OPTION_LETTERS, format_boxes
from modomodo.data.schema import ANSWER_KINDS, Example
from modomodo.data.shards import encode_meta


class CurationError(ValueError):
    """The curate stage cannot run (bad output folder, unknown generator) or its output is corrupt."""


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
    image, original, stored = normalise_image(fields["image"], limits)
    if kind == "mc":
        solution = _mc_letter(solution, options)
    elif kind == "box":
        solution = rescale_box_solution(solution, original, stored)
    if stored != original:
        meta["resized_from"] = f"{original[0]}x{original[1]}"
    extra = _extra_images(fields.get("extra_images"), limits)
    return Example(example_id, domain, image, problem, solution, kind, options, meta, extra)


def _extra_images(value: Any, limits: CurationLimits) -> tuple[bytes, ...]:
    """Images after the first (MMMU's), each checked and normalised as the first is; a rejection
    names the image by its place in the example (``image 2`` is the first extra one)."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise Rejected("bad_image", f"extra_images must be a list of images, got {type(value).__name__}")
    out = []
    for number, data in enumerate(value, start=2):
        try:
            out.append(normalise_image(data, limits)[0])
        except Rejected as rejected:
            raise Rejected(rejected.reason, f"image {number}: {rejected.detail}") from None
    return tuple(out)


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


def rescale_box_solution(solution: str, original: tuple[int, int], stored: tuple[int, int]) -> str:
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


def normalise_image(data: Any, limits: CurationLimits) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """Decode, bound and normalise an image; returns the stored bytes, original size and stored size.

    What is stored (docs/synthetic-suite.md, "Normalisation"):

    - the source's bytes, unchanged, for an RGB PNG or a baseline RGB or grayscale JPEG that
      needs neither a resize nor an EXIF rotation: what a reader decodes is what the source held;
    - a JPEG (quality :data:`JPEG_QUALITY`, the source's chroma subsampling) for such a JPEG that
      is resized: re-encoding it losslessly would make a file ten times the source's;
    - an RGB PNG for everything else (alpha, palette, CMYK, 16-bit, progressive JPEG, GIF, WebP...).

    An EXIF orientation is applied, as the ``datasets`` Image feature does when it decodes (what the
    paper's pipeline hands the Qwen2-VL processor), and the original size is the size so turned:
    the frame the image is shown, and its boxes are read, in. Stored bytes never carry one.
    """
    if not isinstance(data, bytes | bytearray):
        raise Rejected("bad_image", f"image must be bytes, got {type(data).__name__}")
    data = bytes(data)
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            size = probe.size
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
            return _normalised(data, image, limits)
    except Rejected:
        raise
    except Exception as exc:  # as above: any decoder failure means the bytes are not a usable image
        raise Rejected("bad_image", f"{type(exc).__name__}: {exc}") from exc


JPEG_QUALITY = 95
"""Quality of a resized JPEG: the highest Pillow recommends (above 95, its documentation says,
files grow with hardly any gain in quality)."""


def _normalised(
    data: bytes, image: Image.Image, limits: CurationLimits
) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """:func:`normalise_image` on a decoded image whose bounds and checksums passed."""
    # An EXIF block that does not parse raises here: bad_image, as the datasets decode would fail.
    orientation = image.getexif().get(ExifTags.Base.Orientation)
    turned = ImageOps.exif_transpose(image) if orientation in range(2, 9) else image
    size = turned.size
    target = _target_size(size, limits.resize_long_side)
    if min(target) < limits.min_side:
        raise Rejected("image_size", f"resized to {target[0]}x{target[1]}, below min_side {limits.min_side}")
    if turned is image and target == size and _kept_as_is(image, orientation):
        return data, size, size
    if target != size and _plain_jpeg(image):
        # The source's chroma subsampling (-1, Pillow's default, when it has none): 4:4:4 stays
        # 4:4:4, and a 4:2:0 source loses no colour it still had.
        sampling = JpegImagePlugin.get_sampling(image)
        resized = turned.resize(target, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        resized.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=sampling)
        return buffer.getvalue(), size, target
    rgb = _to_rgb(turned)
    if target != size:
        rgb = rgb.resize(target, Image.Resampling.BICUBIC)
    return encode_png(rgb), size, target


def _kept_as_is(image: Image.Image, orientation: int | None) -> bool:
    """Whether the source's bytes are stored unchanged (no resize, no rotation needed)."""
    if orientation not in (None, 1):
        return False  # an orientation to apply, or a tag no reader agrees on
    return (image.format == "PNG" and image.mode == "RGB") or _plain_jpeg(image)


def _plain_jpeg(image: Image.Image) -> bool:
    """A baseline (not progressive) JPEG in RGB or grayscale: every JPEG reader decodes it, and to
    the same RGB pixels a converted copy would hold (grayscale is replicated into the channels)."""
    return image.format == "JPEG" and image.mode in ("RGB", "L") and not image.info.get("progressive")


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
