"""The local dataset cache: a downloaded dataset is reused while its fingerprint holds, and a
download is never seen half done."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cached_download(dest: Path, fingerprint: str, download: Callable[[Path], object]) -> Path:
    """``dest``, filled by ``download(folder)`` unless a copy with the same ``fingerprint`` (kept
    in the sibling ``<dest>.fetched``) is there already; returns ``dest``.

    ``download`` writes into a temporary sibling folder, which replaces ``dest`` only once it
    returned: an interrupted or failed download leaves the old copy or nothing, and its partial
    folder is removed. The fingerprint is written last, so a copy without one is fetched again.
    """
    marker = dest.with_name(dest.name + ".fetched")
    if dest.is_dir() and marker.is_file() and marker.read_text() == fingerprint:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{dest.name}.fetching-", dir=dest.parent))
    try:
        download(building)
        marker.unlink(missing_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(building, dest)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    marker.write_text(fingerprint)
    return dest
