"""pyproject lists every package folder, so a wheel ships all of bench, its methods and the configs."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir = setuptools["package-dir"]
    assert package_dir == {"bench.configs": "configs", "bench.methods": "methods"}  # installed inside bench/
    folders = {"bench": ROOT / "bench", "bench.methods": ROOT / "methods", "bench.configs": ROOT / "configs"}
    expected = set()
    for name, top in folders.items():
        for py in top.rglob("*.py"):
            rel = py.parent.relative_to(top)
            expected.add(".".join([name, *rel.parts]))
    assert expected == set(setuptools["packages"])


def test_wheel_installs_bench_only(tmp_path):
    """A wheel holds one top-level package, ``bench``, with ``bench.methods``, ``bench.configs`` and the package
    data; no top-level ``methods`` (a name any other project may use). Built from a copy of the sources
    with the venv's setuptools (no build isolation: no network)."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    for name in ("bench", "methods", "configs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names} == {"bench", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    expected = {"bench/methods/__init__.py", "bench/methods/coop.py", "bench/methods/_parts/losses.py",
                "bench/configs/toy.py", "bench/configs/_base_/default_runtime.py", "bench/cli/__main__.py",
                "bench/features/cache.py", "bench/data/synonyms/coco.json", "bench/toy/model/card.json"}
    assert expected <= names, sorted(expected - names)
