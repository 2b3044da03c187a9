"""Published dataset layouts (the paper's training sets and benchmarks) adapted to the Example schema.

Importing this package registers every built-in layout; see ``docs/real-data.md``.
"""

from __future__ import annotations

from modomodo.data.layouts import benchmarks, training  # noqa: F401  (they register their layouts)
from modomodo.data.layouts.base import (
    FRAMES,
    LAYOUTS,
    AdaptContext,
    Frame,
    Layout,
    LayoutError,
    RowError,
    adapt_row,
    boxes_to_pixels,
    get_layout,
    register_layout,
)
from modomodo.data.layouts.readers import check_schema, fetch_dataset, read_layout

__all__ = [
    "FRAMES",
    "LAYOUTS",
    "AdaptContext",
    "Frame",
    "Layout",
    "LayoutError",
    "RowError",
    "adapt_row",
    "boxes_to_pixels",
    "check_schema",
    "fetch_dataset",
    "get_layout",
    "read_layout",
    "register_layout",
]
