"""pyproject lists every package folder, so a wheel ships all of bench, methods and the configs."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = setuptools["package-dir"]
    assert package_dir == {"bench.configs": "configs"}  # configs/ installs as bench/configs
    folders = {"bench": ROOT / "bench", "methods": ROOT / "methods", "bench.configs": ROOT / "configs"}
    expected = set()
    for name, top in folders.items():
        for py in top.rglob("*.py"):
            rel = py.parent.relative_to(top)
            expected.add(".".join([name, *rel.parts]))
    assert expected == set(setuptools["packages"])
