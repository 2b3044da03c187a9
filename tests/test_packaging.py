"""The wheel ships every package of the library: pyproject.toml lists its packages by hand (the
components and pipelines folders map into ``modomodo``), so a new subpackage left out of the list
would be missing from the images while an editable install still finds it."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` under the package directories, as a dotted name."""
    found = set()
    for package, folder in SETUPTOOLS["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    return found


def test_pyproject_lists_every_package_of_the_source_tree():
    listed = set(SETUPTOOLS["packages"])
    assert source_packages() - listed == set(), "packages missing from [tool.setuptools] packages"
    assert listed - source_packages() == set(), "packages listed in pyproject.toml without a folder"
