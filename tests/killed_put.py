"""Helper process for tests/test_security.py: a local-store ``put_dir`` that SIGKILLs itself at a
chosen moment, as the kernel's OOM killer or a node drain would.

Usage: python killed_put.py ROOT SOURCE_DIR KEY swap|copy
``swap``: after every file and the manifest are copied, at the moment the new folder would take
the key's place; ``copy``: after the first file is copied.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys

import modomodo.store.local as store_module
from modomodo.store import LocalStore


def die(*_: object, **__: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(root: str, source: str, key: str, moment: str) -> None:
    if moment == "swap":
        store_module._exchange = die  # the atomic swap of an overwrite
        rename = pathlib.Path.rename

        def rename_or_die(self, target):  # the rename of a first write (and of earlier versions)
            if str(target).endswith(key):
                die()
            return rename(self, target)

        pathlib.Path.rename = rename_or_die
    else:
        put_file = LocalStore._put_file

        def put_then_die(self, src, name):
            put_file(self, src, name)
            die()

        LocalStore._put_file = put_then_die
    LocalStore(pathlib.Path(root)).put_dir(pathlib.Path(source), key)
    raise SystemExit("not killed")


if __name__ == "__main__":
    main(*sys.argv[1:5])
