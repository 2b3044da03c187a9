"""Pixel-exact pictures for the synthetic suite: shapes and filled blocks on a 4x4 grid of cells.

Every picture is a 112x112 RGB image divided into a 4x4 grid of 28-pixel cells. A Qwen2-VL image
processor with 14-pixel patches and 2x2 merging turns it into exactly 16 image tokens, one per cell,
so each object a task asks about lives in one token: that is what lets a tiny random-init model
learn the tasks on CPU. Drawing uses no antialiasing, no fonts and no randomness, and PNGs are
written without optimisation or timestamps, so the same :class:`Canvas` always gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw

GRID = 4
"""Cells per row and per column."""
CELL = 28
"""Cell side in pixels (two 14-px patches, merged into one token)."""
IMAGE_SIZE = GRID * CELL
"""Image side in pixels (112)."""
SHAPE_INSET = 4
"""Gap between a cell's border and the shape drawn in it, so neighbouring shapes never touch."""
BAR_INSET = 4
"""Horizontal gap between a column's border and a chart bar, so bars read as bars, not blocks."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 50, 47),
    "green": (40, 160, 60),
    "blue": (38, 90, 210),
    "yellow": (235, 190, 30),
}
"""The colour names tasks use, and how they are painted."""
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
"""The shape names tasks use."""

Background = Literal["white", "paper", "chart", "tint"]
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),  # every training domain
    "paper": (250, 244, 228),  # the table of the `gridqa` benchmark
    "chart": (242, 242, 242),  # the bar chart of the `chart` benchmark
    "tint": (236, 242, 250),  # the mixed multiple choice of the `mixmc` benchmark
}
"""Background fills. Out-of-domain surfaces use pale tints close to white: a different look, yet one
a vision tower trained on white pictures can still read."""

Lines = Literal["none", "grid", "table", "chart"]
_GRID_LINE = (200, 200, 200)  # light cell borders over a geometry figure, so its cells can be counted
_TABLE_LINE = (60, 60, 60)  # dark table rules, outer frame included
_CHART_LINE = (215, 215, 215)  # horizontal value lines behind the bars
_AXIS_LINE = (60, 60, 60)  # the chart's baseline


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell; ``row`` and ``col`` count from 0 at the top left."""

    row: int
    col: int

    def __post_init__(self) -> None:
        if not (0 <= self.row < GRID and 0 <= self.col < GRID):
            raise ValueError(f"cell ({self.row}, {self.col}) is outside the {GRID}x{GRID} grid")

    @property
    def box(self) -> tuple[int, int, int, int]:
        """The cell's bounds ``(x1, y1, x2, y2)`` in pixels, ``x2``/``y2`` exclusive."""
        return (self.col * CELL, self.row * CELL, (self.col + 1) * CELL, (self.row + 1) * CELL)

    @property
    def label(self) -> str:
        """How reasoning text names the cell, counting from 1 as people do: ``row 2 col 3``."""
        return f"row {self.row + 1} col {self.col + 1}"


ALL_CELLS: tuple[Cell, ...] = tuple(Cell(r, c) for r in range(GRID) for c in range(GRID))


@dataclass(frozen=True)
class Item:
    """A coloured shape drawn inside one cell."""

    cell: Cell
    colour: str
    shape: str

    @property
    def name(self) -> str:
        """``red triangle``."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Block:
    """A solid rectangle covering whole cells: a shaded figure or a chart bar."""

    top: int
    left: int
    height: int
    width: int
    colour: str
    bar: bool = False
    """Draw as a chart bar (narrower than its column) instead of filling the cells edge to edge."""


@dataclass(frozen=True)
class Canvas:
    """Everything a picture shows; equal canvases render to identical PNG bytes."""

    items: tuple[Item, ...] = ()
    blocks: tuple[Block, ...] = ()
    background: Background = "white"
    lines: Lines = "none"


def render_png(canvas: Canvas) -> bytes:
    """Draw ``canvas`` and encode it with :func:`encode_png`."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUNDS[canvas.background])
    draw = ImageDraw.Draw(image)
    if canvas.lines == "chart":
        _draw_chart_lines(draw)
    for block in canvas.blocks:
        _draw_block(draw, block)
    if canvas.lines in ("grid", "table"):
        _draw_cell_borders(
            draw, _GRID_LINE if canvas.lines == "grid" else _TABLE_LINE, frame=canvas.lines == "table"
        )
    for item in canvas.items:
        _draw_item(draw, item)
    return encode_png(image)


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes that depend only on the pixels: fixed zlib level, no optimisation pass, no metadata."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _draw_item(draw: ImageDraw.ImageDraw, item: Item) -> None:
    x1, y1, x2, y2 = item.cell.box
    # Pillow's bounds are inclusive, hence the -1 on the far side.
    left, top, right, bottom = x1 + SHAPE_INSET, y1 + SHAPE_INSET, x2 - 1 - SHAPE_INSET, y2 - 1 - SHAPE_INSET
    fill = COLOURS[item.colour]
    if item.shape == "circle":
        draw.ellipse((left, top, right, bottom), fill=fill)
    elif item.shape == "square":
        draw.rectangle((left, top, right, bottom), fill=fill)
    elif item.shape == "triangle":
        draw.polygon([((left + right) // 2, top), (right, bottom), (left, bottom)], fill=fill)
    else:
        raise ValueError(f"unknown shape {item.shape!r}; known: {SHAPES}")


def _draw_block(draw: ImageDraw.ImageDraw, block: Block) -> None:
    x1, y1 = block.left * CELL, block.top * CELL
    x2, y2 = (block.left + block.width) * CELL - 1, (block.top + block.height) * CELL - 1
    if block.bar:
        x1, x2 = x1 + BAR_INSET, x2 - BAR_INSET
    draw.rectangle((x1, y1, x2, y2), fill=COLOURS[block.colour])


def _draw_cell_borders(draw: ImageDraw.ImageDraw, colour: tuple[int, int, int], *, frame: bool) -> None:
    positions = range(0 if frame else 1, GRID + 1 if frame else GRID)
    for k in positions:
        at = min(k * CELL, IMAGE_SIZE - 1)
        draw.line((at, 0, at, IMAGE_SIZE - 1), fill=colour)
        draw.line((0, at, IMAGE_SIZE - 1, at), fill=colour)


def _draw_chart_lines(draw: ImageDraw.ImageDraw) -> None:
    for k in range(1, GRID):
        draw.line((0, k * CELL, IMAGE_SIZE - 1, k * CELL), fill=_CHART_LINE)
    draw.line((0, IMAGE_SIZE - 1, IMAGE_SIZE - 1, IMAGE_SIZE - 1), fill=_AXIS_LINE)
