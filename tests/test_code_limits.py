"""Size limits that keep the code easy to change (issue 15): no module of the library over
MAX_MODULE_LINES lines, no function outside tests over MAX_FUNCTION_LINES lines (signature,
docstring and body). A module or function that grows past them fails here; split it by concern.

The exceptions below are known and named with the change that removes them; an exception that no
longer exceeds its limit fails too, so the list only shrinks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "src" / "modomodo"
CODE = ("src", "components", "pipelines", "benchmarks", "monitoring", "scripts")
"""Folders whose functions are held to the limit (tests are not)."""
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

MODULE_EXCEPTIONS: dict[str, str] = {}
"""None left; add one only with the change that removes it."""
FUNCTION_EXCEPTIONS: dict[str, str] = {}
"""None left; add one only with the change that removes it."""


def module_lengths() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in sorted(LIBRARY.rglob("*.py"))
    }


def function_lengths(root: Path = ROOT, folders: tuple[str, ...] = CODE) -> dict[str, int]:
    """Lines of every function (decorators, signature, docstring, body; methods and nested ones
    too) under ``folders`` of ``root``, as ``<path>::<name>``."""
    lengths = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                    key = f"{path.relative_to(root)}::{node.name}"
                    lengths[key] = max(lengths.get(key, 0), node.end_lineno - start + 1)
    return lengths


def test_no_library_module_is_over_the_limit():
    lengths = module_lengths()
    over = {m: n for m, n in lengths.items() if n > MAX_MODULE_LINES and m not in MODULE_EXCEPTIONS}
    assert not over, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {over}"


def test_no_function_is_over_the_limit():
    lengths = function_lengths()
    over = {f: n for f, n in lengths.items() if n > MAX_FUNCTION_LINES and f not in FUNCTION_EXCEPTIONS}
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (extract a helper): {over}"


@pytest.mark.parametrize(
    ("exceptions", "lengths", "limit"),
    [
        (MODULE_EXCEPTIONS, module_lengths, MAX_MODULE_LINES),
        (FUNCTION_EXCEPTIONS, function_lengths, MAX_FUNCTION_LINES),
    ],
)
def test_every_exception_is_still_needed(exceptions, lengths, limit):
    found = lengths()
    stale = {name: found.get(name) for name in exceptions if found.get(name, 0) <= limit}
    assert not stale, f"no longer over {limit} lines (or gone): remove them from the exceptions: {stale}"


def test_the_measure_counts_decorators_signature_and_nested_functions(tmp_path):
    (tmp_path / "code").mkdir()
    flat, nested = "    x = 1\n" * 60, "            x = 1\n" * 60
    source = (
        f"@decorator\ndef f(\n    a,\n):\n{flat}\nclass C:\n    def m(self):\n        def inner():\n{nested}"
    )
    (tmp_path / "code" / "m.py").write_text(source)
    lengths = function_lengths(tmp_path, ("code",))
    assert lengths["code/m.py::f"] == 64
    assert lengths["code/m.py::inner"] == 61 and lengths["code/m.py::m"] == 62


def test_data_never_imports_rewards():
    # rewards builds on data (schema, answers); data importing rewards would make the two a cycle.
    found = []
    for path in sorted((LIBRARY / "data").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module or ""]
            found += [f"{path.name}: {n}" for n in names if n.startswith("modomodo.rewards")]
    assert not found, f"data imports rewards: {found}"


def test_the_library_imports_neither_kfp_nor_kubernetes():
    """Layers point down: components and pipelines import the library, never the other way, so
    the library runs (and is tested) without a KFP or Kubernetes client. The CLI is the top layer
    (it compiles and submits pipelines, importing them inside its commands) and is left out."""
    found = []
    for path in sorted(set(LIBRARY.rglob("*.py")) - set((LIBRARY / "cli").rglob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] in ("kfp", "kfp_server_api", "kubernetes")
            ]
    assert not found, found
