"""Each package imports in a fresh interpreter; wire modules pull in nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

HEAVY = ("cv2", "av", "serial", "pymodbus", "sqlalchemy", "PySide6", "numpy", "fastapi", "uvicorn")


def _modules_after_import(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "module",
    [
        "edge",
        "console",
        "cloud_sync",
        "fleet_common",
        "edge.cli",
        "edge.api",
        "edge.camera",
        "edge.store",
    ],
)
def test_package_imports_alone(module: str) -> None:
    _modules_after_import(module)


@pytest.mark.parametrize("module", ["edge.wire", "cloud_sync.wire", "edge.cli", "edge.config"])
def test_light_modules_load_nothing_heavy(module: str) -> None:
    loaded = _modules_after_import(module)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"{module} pulls in {heavy}"


def test_edge_without_rtsp_does_not_load_pyav() -> None:
    code = (
        "import json, sys\n"
        "from edge.config import CameraConfig\n"
        "from edge.camera import open_source\n"
        "from edge.metrics import EdgeMetrics\n"
        "open_source(CameraConfig(source='synthetic://'), lambda f: None, EdgeMetrics())\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "av" not in json.loads(out.stdout)
