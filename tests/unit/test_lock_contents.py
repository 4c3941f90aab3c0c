"""What uv.lock promises every machine: hashes for every file, and wheels for every platform
the programs support (the edge on 64-bit Linux, x86_64 and the Pi's arm64)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.platform_support import UnsupportedPlatform, check_platform

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PACKAGES: dict[str, list[dict[str, Any]]] = {}
for _p in LOCK["package"]:
    PACKAGES.setdefault(_p["name"], []).append(_p)
PI_PYTHON = "cp311"  # Raspberry Pi OS 12 (bookworm), like Debian 12


def _files(package: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "sdist" in package:
        yield package["sdist"]
    yield from package.get("wheels", [])


def test_every_locked_file_has_a_sha256() -> None:
    registry = [p for p in LOCK["package"] if "registry" in p["source"]]
    assert len(registry) > 50
    for package in registry:
        files = list(_files(package))
        assert files, package["name"]
        for f in files:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", f["hash"]), (package["name"], f)


def test_the_lock_was_made_for_every_supported_machine() -> None:
    required = set(LOCK["required-markers"])
    assert "platform_machine == 'x86_64' and sys_platform == 'linux'" in required
    assert "platform_machine == 'aarch64' and sys_platform == 'linux'" in required
    assert "platform_machine == 'AMD64' and sys_platform == 'win32'" in required


def _edge_closure() -> set[str]:
    """Every package `carwash-fleet[edge]` installs on Linux, by name."""
    (project,) = PACKAGES["carwash-fleet"]
    todo = [d["name"] for d in project["dependencies"]]
    todo += [d["name"] for d in project["optional-dependencies"]["edge"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for version in PACKAGES[name]:
            for dep in version.get("dependencies", []):
                if "sys_platform == 'win32'" not in dep.get("marker", ""):
                    todo.append(dep["name"])
    return seen


def _minor(tag: str) -> int:
    """cp37 -> 7, cp311 -> 11 (every tag here is CPython 3)."""
    return int(tag.removeprefix("cp3"))


def _wheel_fits(filename: str, machine: str) -> bool:
    _, _, python, abi, platform = filename[: -len(".whl")].rsplit("-", 4)
    if platform == "any":
        return True
    pythons = python.split(".")
    stable = abi == "abi3" and any(_minor(p) <= _minor(PI_PYTHON) for p in pythons)
    fits_python = PI_PYTHON in pythons or stable
    return fits_python and "manylinux" in platform and machine in platform


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_every_edge_dependency_has_a_wheel_for_the_pis_python(machine: str) -> None:
    """No edge dependency is ever built from source on a Pi (or an x86_64 server)."""
    closure = _edge_closure()
    assert {"numpy", "opencv-python-headless", "simplejpeg", "onnxruntime", "av"} <= closure
    for name in sorted(closure):
        versions = PACKAGES[name]
        fits = [
            w["url"].rsplit("/", 1)[1]
            for v in versions
            for w in v.get("wheels", [])
            if _wheel_fits(w["url"].rsplit("/", 1)[1], machine)
        ]
        assert fits, f"{name}: no wheel for {PI_PYTHON} on {machine} Linux"


@pytest.mark.parametrize(
    ("system", "machine", "bits", "supported"),
    [
        ("Linux", "x86_64", 64, True),
        ("Linux", "aarch64", 64, True),
        ("Linux", "armv7l", 32, False),  # 32-bit Raspberry Pi OS
        ("Linux", "aarch64", 32, False),  # 64-bit kernel, 32-bit userland (old Pi OS images)
        ("Linux", "armv6l", 32, False),
        ("Windows", "AMD64", 64, False),
        ("Darwin", "arm64", 64, False),
    ],
)
def test_the_edge_names_the_platforms_it_runs_on(
    system: str, machine: str, bits: int, supported: bool
) -> None:
    if supported:
        check_platform(system, machine, bits)
        return
    with pytest.raises(UnsupportedPlatform) as err:
        check_platform(system, machine, bits)
    message = str(err.value)
    assert "64" in message
    if system == "Linux":
        assert "64-bit (arm64) image" in message  # what to install on a Pi instead


def test_edge_run_on_32_bit_arm_exits_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import platform

    from edge import cli

    monkeypatch.setattr(platform, "machine", lambda: "armv7l")
    rc = cli.main(["run", "--source", "synthetic://", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unsupported platform armv7l" in err
    assert "Traceback" not in err
