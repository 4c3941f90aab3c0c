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


# The console's Qt-free core: plain asyncio + httpx (+ zeroconf), tested without Qt. Only
# console/presenters and console/ui may import PySide6.
CONSOLE_SERVICES = [
    "console.services",
    "console.services.alerts",
    "console.services.credentials",
    "console.services.device",
    "console.services.discovery",
    "console.services.edge_client",
    "console.services.errors",
    "console.services.pool",
    "console.services.promtext",
    "console.services.sse",
    # Pure helpers of the pages (rows and CSV, chart buffers, schema → form and diff, cart tiles).
    "console.platefeed",
    "console.devicestats",
    "console.configform",
    "console.carts",
]
CONSOLE_SERVICES_FORBIDDEN = ("PySide6", "shiboken6", "qasync", "av", "cv2", "numpy", "sqlalchemy")


@pytest.mark.parametrize("module", CONSOLE_SERVICES)
def test_console_services_stay_qt_free_and_light(module: str) -> None:
    loaded = _modules_after_import(module)
    heavy = sorted(m for m in loaded if m.split(".")[0] in CONSOLE_SERVICES_FORBIDDEN)
    assert not heavy, f"{module} pulls in {heavy}"


def test_console_services_list_is_complete() -> None:
    # A new module under console/services must be added above (and so checked).
    folder = ROOT / "console" / "services"
    found = {f"console.services.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    assert found == {m for m in CONSOLE_SERVICES if m.startswith("console.services.")}


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


# ---------------------------------------------------------------------- cart locks (edge/locks)
SERIAL = ("serial", "pymodbus")
_EDGE_RUN = (
    "import asyncio, json, sys, tempfile\n"
    "from edge.api import create_app\n"
    "from edge.config import EdgeConfig\n"
    "from edge.service import Edge\n"
    "async def main():\n"
    "    locks = json.loads(sys.argv[1])\n"
    "    data = {'data_dir': tempfile.mkdtemp(), 'camera': {'source': 'synthetic://?fps=2'}}\n"
    "    edge = Edge.create(EdgeConfig.model_validate({**data, 'locks': locks}))\n"
    "    create_app(edge)\n"
    "    await edge.start_async()\n"
    "    await edge.stop_async()\n"
    "asyncio.run(main())\n"
    "print(json.dumps(sorted(sys.modules)))\n"
)


def _serial_modules_after_edge_run(locks: dict[str, object]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _EDGE_RUN, json.dumps(locks)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return sorted(m for m in json.loads(out.stdout) if m.split(".")[0] in SERIAL)


@pytest.mark.parametrize(
    "module", ["edge.locks", "edge.locks.service", "edge.locks.driver", "edge.api.carts"]
)
def test_lock_modules_load_no_serial_stack(module: str) -> None:
    loaded = _modules_after_import(module)
    assert not sorted(m for m in loaded if m.split(".")[0] in SERIAL)


def test_edge_without_locks_starts_without_pyserial_or_pymodbus() -> None:
    assert _serial_modules_after_edge_run({"enabled": False}) == []
    # The same run with a lock board configured does load them (the check above can fail).
    board = {"enabled": True, "port": "/nonexistent/tty", "boards": [{"unit": 1, "locks": 1}]}
    loaded = _serial_modules_after_edge_run(board)
    assert "pymodbus" in loaded
    assert "serial" in loaded


# ---------------------------------------------------------------------- plates (edge/plates)
OCR = ("rapidocr", "onnxruntime", "httpx")
_PLATES_RUN = _EDGE_RUN.replace("'locks': locks", "'plates': locks")


def _ocr_modules_after_edge_run(plates: dict[str, object]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PLATES_RUN, json.dumps(plates)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return sorted({m.split(".")[0] for m in json.loads(out.stdout)} & set(OCR))


def test_an_edge_with_plates_off_loads_no_ocr_and_no_http_client() -> None:
    """With plates off an edge (a Pi Zero at a cart-only site) never loads RapidOCR, ONNX
    Runtime or httpx; the cloud client comes with a token (the check can fail)."""
    assert _ocr_modules_after_edge_run({"policy": "none"}) == []
    assert "httpx" in _ocr_modules_after_edge_run({"policy": "cloud", "cloud": {"token": "t"}})


@pytest.mark.parametrize("module", ["edge.plates.service", "edge.api.plates", "edge.plates.local"])
def test_plate_modules_load_no_ocr_at_import(module: str) -> None:
    loaded = _modules_after_import(module)
    assert not sorted(m for m in loaded if m.split(".")[0] in ("rapidocr", "onnxruntime"))
