"""The package layout the design card fixes, and the promise that the runtime install has no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_FOLDERS = {"export": "holevision.export", "runtime": "holevision.runtime", "calibration": "holevision.calibration"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_code_folder_is_a_listed_package():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    expected = set()
    for folder, dotted in CODE_FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            expected.add(".".join([dotted, *rel.parts]))
    missing = sorted(expected - listed)
    assert not missing, f"packages with an __init__.py but not in pyproject.toml [tool.setuptools] packages: {missing}"
    stale = sorted(listed - expected)
    assert not stale, f"pyproject.toml lists packages that do not exist: {stale}"


def test_no_bare_top_level_modules_are_mapped():
    package_dir = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert set(package_dir) == set(CODE_FOLDERS.values())
    for name in _pyproject()["tool"]["setuptools"]["packages"]:
        assert name.startswith("holevision."), name


def test_runtime_and_calibration_never_import_torch_or_export():
    """Dependency direction: export -> runtime -> calibration; runtime is torch-free."""
    offenders = []
    for folder, banned in (("runtime", ("torch", "transformers", "holevision.export")),
                           ("calibration", ("torch", "transformers", "holevision.export", "holevision.runtime"))):
        for py in (ROOT / folder).rglob("*.py"):
            for lineno, line in enumerate(py.read_text().splitlines(), 1):
                stripped = line.strip()
                if not stripped.startswith(("import ", "from ")):
                    continue
                module = stripped.split()[1]
                if any(module == b or module.startswith(b + ".") for b in banned):
                    offenders.append(f"{py.relative_to(ROOT)}:{lineno}: {stripped}")
    # runtime/cli.py names export commands by string only (importlib), which this scan allows.
    assert not offenders, "forbidden imports:\n" + "\n".join(offenders)


@pytest.mark.slow
def test_runtime_extra_installs_without_torch(tmp_path):
    """In a fresh venv with only `pip install .[runtime]`, the CLI works and torch is not importable."""
    if os.environ.get("HOLEVISION_SKIP_VENV_TEST"):
        pytest.skip("HOLEVISION_SKIP_VENV_TEST is set")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    cache = ROOT / ".venv" / "pip-cache"
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--cache-dir", str(cache), f"{ROOT}[runtime]"],
        capture_output=True, text=True, timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    help_run = subprocess.run([str(env_dir / "bin" / "holevision"), "--help"], capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0, help_run.stderr
    assert "commands" in help_run.stdout
    probe = subprocess.run([str(py), "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('torch') is not None)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, "torch is importable in the runtime-only install"
    listing = subprocess.run([str(py), "-c", "import runtime"], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path)
    assert listing.returncode != 0, "a bare top-level `runtime` module was installed"
