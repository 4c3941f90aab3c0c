"""The lock as a fresh clone meets it: scripts refuse a lock out of step with pyproject.toml,
and installing refuses a file whose hash the lock does not name.

Each test copies the few files the scripts read into a temporary project and runs the real
scripts there, with the real uv (the pinned one from .venv-tools)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not (TOOLS / "bin" / "uv").exists():
        pytest.fail("the pinned uv is missing: run scripts/check once (it installs .venv-tools)")
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    for folder in ("scripts", "fleet_common"):
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / ".venv-tools").symlink_to(TOOLS)
    return tmp_path


def _check(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["scripts/check"], cwd=project, capture_output=True, text=True, timeout=300, check=False
    )


def _says_run_lock(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert "run scripts/lock" in result.stderr, result.stderr
    # Refused before anything was installed from the stale lock.
    assert "installing" not in result.stderr


def test_a_dependency_changed_without_relocking_fails_check(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert '"mypy>=1.10",' in text
    pyproject.write_text(text.replace('"mypy>=1.10",', '"mypy>=1.10",\n    "idna>=3",', 1))
    _says_run_lock(_check(project))


def test_a_line_deleted_from_the_lock_fails_check(project: Path) -> None:
    lock = project / "uv.lock"
    lines = lock.read_text().splitlines(keepends=True)
    at = lines.index('name = "tomli-w"\n')
    del lines[at]  # the package's name: the lock no longer parses
    lock.write_text("".join(lines))
    _says_run_lock(_check(project))


def test_a_version_edited_in_the_lock_fails_check(project: Path) -> None:
    lock = project / "uv.lock"
    text = lock.read_text()
    edited = re.sub(r'(name = "pydantic"\nversion = ")[^"]+"', r'\g<1>2.7.0"', text, count=1)
    assert edited != text
    lock.write_text(edited)
    _says_run_lock(_check(project))


def test_install_refuses_a_file_whose_hash_the_lock_does_not_name(project: Path) -> None:
    """The lock is consistent, but one wheel's recorded hash is not the file's: the install
    stops on it (wheels only, so it cannot fall back on building the source either)."""
    lock = project / "uv.lock"
    text = lock.read_text()
    block = text[text.index('name = "tomli-w"') :]
    wheel = re.search(r'tomli_w-[^"]+\.whl", hash = "sha256:([0-9a-f]{64})"', block)
    assert wheel is not None
    good = wheel.group(1)
    bad = ("0" if good[0] != "0" else "1") + good[1:]
    lock.write_text(text.replace(good, bad))
    result = _check(project)
    assert result.returncode != 0
    assert "Hash mismatch" in result.stderr, result.stderr
    assert "tomli-w" in result.stderr
