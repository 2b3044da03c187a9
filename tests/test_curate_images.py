"""Image normalisation keeps a source's JPEG where that is faithful: byte for byte when nothing
changes, JPEG when resized; everything else becomes RGB PNG, and every reader decodes the result."""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import datasets
import numpy as np
import pytest
import torch
from PIL import ExifTags, Image, JpegImagePlugin
from tiny import build_test_model

from modomodo.data.curate import QUARANTINE_FILE, curate, read_curated
from modomodo.data.record_checks import CurationLimits, Rejected, normalise_image
from modomodo.data.sources import SourceSpec
from modomodo.data.synthetic import generate
from modomodo.policy.inputs import generation_batch
from modomodo.policy.tiny import load_tiny_processor
from modomodo.rl.grpo import schedule_dataset
from modomodo.rl.sampler import Draw


def _photo(size=(160, 120), mode="RGB", seed=0) -> Image.Image:
    """A smooth random picture: no two are alike, and JPEG and resizing change it only a little."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    small = rng.integers(0, 256, (6, 8, channels), dtype=np.uint8)
    return Image.fromarray(small[..., 0] if channels == 1 else small).resize(size, Image.Resampling.BICUBIC)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rotated_exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def _curate_one(tmp_path, image: bytes, solution: str, kind: str, limits=CurationLimits()):
    row = {"id": "r0", "image": base64.b64encode(image).decode(), "problem": "Where?", "solution": solution}
    (tmp_path / "src.jsonl").write_text(json.dumps(row) + "\n")
    source = SourceSpec("path", path=str(tmp_path / "src.jsonl"), answer_kind=kind)
    curate({"ref": source}, tmp_path / "out", seed=0, limits=limits)
    return read_curated(tmp_path / "out", "ref", "train")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_baseline_jpeg_that_needs_no_resize_is_kept_byte_for_byte(tmp_path, mode):
    source = _encode(_photo(mode=mode), "JPEG", quality=90)
    (example,) = _curate_one(tmp_path, source, "a picture", "text", CurationLimits(resize_long_side=640))
    assert example.image == source
    assert "resized_from" not in example.meta
    # Grayscale is kept too: every reader's RGB copy repeats the one channel, as a converted PNG would.
    decoded = np.asarray(Image.open(io.BytesIO(example.image)).convert("RGB"))
    assert decoded.shape == (120, 160, 3)
    if mode == "L":
        assert (decoded == decoded[..., :1]).all()


def test_a_large_jpeg_is_resized_as_jpeg_with_its_boxes_rescaled(tmp_path):
    source = _encode(_photo((1280, 640)), "JPEG", quality=90, subsampling=0)  # 4:4:4
    (example,) = _curate_one(
        tmp_path, source, "[{'Position': [640, 320, 1280, 640], 'Confidence': 1}]", "box",
        CurationLimits(resize_long_side=640),
    )  # fmt: skip
    stored = Image.open(io.BytesIO(example.image))
    assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (640, 320))
    assert not stored.info.get("progressive")
    assert JpegImagePlugin.get_sampling(stored) == 0  # the source's 4:4:4, not Pillow's 4:2:0 default
    assert example.solution == "[{'Position': [320, 160, 640, 320], 'Confidence': 1}]"
    assert example.meta["resized_from"] == "1280x640"
    # The same resize stored losslessly differs by the quality-95 re-encoding only.
    lossless = Image.open(io.BytesIO(source)).convert("RGB").resize((640, 320), Image.Resampling.BICUBIC)
    assert np.abs(_pixels(stored) - _pixels(lossless)).mean() < 1.5
    assert len(example.image) < len(_encode(lossless, "PNG")) / 3


def test_a_resized_grayscale_jpeg_stays_grayscale_jpeg():
    source = _encode(_photo((900, 300), mode="L"), "JPEG", quality=90)
    stored, original, size = normalise_image(source, CurationLimits(resize_long_side=600))
    image = Image.open(io.BytesIO(stored))
    assert (image.format, image.mode, original, size, image.size) == (
        "JPEG",
        "L",
        (900, 300),
        (600, 200),
        (600, 200),
    )


def _cmyk_jpeg() -> bytes:
    return _encode(_photo().convert("CMYK"), "JPEG", quality=90)


def _rgba_png() -> bytes:
    image = _photo().convert("RGBA")
    image.putpixel((0, 0), (0, 0, 0, 0))
    return _encode(image, "PNG")


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(_cmyk_jpeg, id="cmyk-jpeg"),
        pytest.param(lambda: _encode(_photo(), "JPEG", quality=90, progressive=True), id="progressive-jpeg"),
        pytest.param(_rgba_png, id="png-with-alpha"),
        pytest.param(lambda: _encode(_photo().convert("P"), "PNG"), id="palette-png"),
        pytest.param(lambda: _encode(_photo(), "GIF"), id="gif"),
        pytest.param(lambda: _encode(_photo(), "WEBP", lossless=True), id="webp"),
        pytest.param(lambda: _encode(_photo(), "BMP"), id="bmp"),
        pytest.param(lambda: _encode(_photo(), "TIFF"), id="tiff"),
    ],
)
def test_every_other_image_becomes_rgb_png_with_the_sources_pixels(encoded):
    source = encoded()
    stored, original, size = normalise_image(source, CurationLimits(resize_long_side=640))
    image = Image.open(io.BytesIO(stored))
    assert (image.format, image.mode, original, size) == ("PNG", "RGB", (160, 120), (160, 120))
    with Image.open(io.BytesIO(source)) as decoded:
        expected = _pixels(decoded)  # RGBA: the colour under the alpha
    if encoded is _rgba_png:  # the transparent corner is composited onto white, the rest is opaque
        assert image.getpixel((0, 0)) == (255, 255, 255)
        expected[0, 0] = 255
    assert np.array_equal(_pixels(image), expected)


def test_a_truncated_or_corrupt_jpeg_is_quarantined_as_bad_image(tmp_path):
    good = _encode(_photo(), "JPEG", quality=90)
    half, table = len(good) // 2, good.index(b"\xff\xc4") + 5  # the first Huffman table's counts
    rows = {
        "truncated": good[:half],
        "corrupt": good[:table] + b"\xff" * 16 + good[table + 16 :],
        "headless": good[:300],
        "good": good,
    }
    lines = [
        json.dumps({"id": k, "image": base64.b64encode(v).decode(), "problem": "What?", "solution": "x"})
        for k, v in rows.items()
    ]
    (tmp_path / "src.jsonl").write_text("\n".join(lines) + "\n")
    source = SourceSpec("path", path=str(tmp_path / "src.jsonl"), answer_kind="text")
    curate({"ref": source}, tmp_path / "out", seed=0)
    quarantined = [json.loads(line) for line in (tmp_path / "out" / QUARANTINE_FILE).read_text().splitlines()]
    assert {q["id"]: q["reason"] for q in quarantined} == {
        "truncated": "bad_image",
        "corrupt": "bad_image",
        "headless": "bad_image",
    }
    assert [e.image for e in read_curated(tmp_path / "out", "ref", "train")] == [good]


# --- EXIF orientation: stored as the datasets Image feature shows it (the paper's pipeline) ---------


def _datasets_view(data: bytes) -> Image.Image:
    """What the paper's pipeline hands the Qwen2-VL processor: the ``datasets`` Image decode."""
    return datasets.Image().decode_example({"bytes": data, "path": None})


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_an_exif_orientation_is_applied_losslessly_as_datasets_applies_it(fmt):
    source = _encode(_photo((160, 120)), fmt, exif=_rotated_exif(6))  # 6: turn 90 degrees clockwise
    stored, original, size = normalise_image(source, CurationLimits())
    image = Image.open(io.BytesIO(stored))
    assert (image.format, original, size, image.size) == ("PNG", (120, 160), (120, 160), (120, 160))
    assert ExifTags.Base.Orientation not in image.getexif()
    assert np.array_equal(_pixels(image), _pixels(_datasets_view(source)))


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return load_tiny_processor(
        build_test_model(tmp_path_factory.mktemp("tiny"), generate("ref", "train", 3, 0))
    )


def _model_input(processor, example) -> torch.Tensor:
    """The pixels evaluation, rollouts and SFT give the model (``policy.inputs``)."""
    return generation_batch(processor, [example])["pixel_values"]


def _as_png(example, image: Image.Image):
    """``example`` holding ``image`` losslessly: what the PNG-only normalisation stored."""
    return dataclasses.replace(example, image=_encode(image.convert("RGB"), "PNG"))


def test_every_reader_sees_the_same_pixels_of_a_stored_image_that_had_an_orientation(tmp_path, processor):
    # Before: an RGB PNG with an orientation was kept byte for byte; the RL dataset (a datasets
    # decode) turned it, evaluation and SFT (policy.inputs, which ignores EXIF) did not.
    source = _encode(_photo((160, 120)), "PNG", exif=_rotated_exif(8))
    (example,) = _curate_one(tmp_path, source, "a picture", "text")
    (row,) = schedule_dataset({"ref": [example]}, [Draw("ref", 0, 0)])  # the GRPO trainer's rows
    assert row["image"].size == (120, 160)
    assert torch.equal(
        _model_input(processor, example), _model_input(processor, _as_png(example, row["image"]))
    )


def test_a_turned_jpeg_that_is_resized_stays_jpeg_with_boxes_in_the_turned_frame(tmp_path):
    source = _encode(_photo((1280, 640)), "JPEG", quality=90, exif=_rotated_exif(6))  # shown 640x1280
    (example,) = _curate_one(
        tmp_path, source, "[{'Position': [0, 640, 320, 1280], 'Confidence': 1}]", "box",
        CurationLimits(resize_long_side=640),
    )  # fmt: skip
    stored = Image.open(io.BytesIO(example.image))
    assert (stored.format, stored.size) == ("JPEG", (320, 640))
    assert ExifTags.Base.Orientation not in stored.getexif()
    assert example.solution == "[{'Position': [0, 320, 160, 640], 'Confidence': 1}]"
    assert example.meta["resized_from"] == "640x1280"


# --- the readers: a kept JPEG decodes on the GRPO and evaluation input paths ------------------------


def test_a_kept_jpeg_decodes_on_the_grpo_and_evaluation_input_paths(tmp_path, processor):
    source = _encode(_photo(), "JPEG", quality=90)
    (example,) = _curate_one(tmp_path, source, "a picture", "text")
    assert example.image == source
    decoded = Image.open(io.BytesIO(source))
    (row,) = schedule_dataset({"ref": [example]}, [Draw("ref", 0, 0)])  # the GRPO trainer's rows
    assert np.array_equal(_pixels(row["image"]), _pixels(decoded))
    # Evaluation, rollouts and SFT: the model gets what a PNG of the decoded pixels would give it.
    assert torch.equal(_model_input(processor, example), _model_input(processor, _as_png(example, decoded)))


def test_a_jpeg_below_min_side_after_resizing_is_rejected_before_encoding():
    source = _encode(_photo((2000, 20)), "JPEG", quality=90)
    with pytest.raises(Rejected, match="below min_side"):
        normalise_image(source, CurationLimits(resize_long_side=640))
