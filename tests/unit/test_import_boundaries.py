"""Each package imports in a fresh interpreter; wire modules pull in nothing heavy."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize(
    "module",
    [
        "fleet_common.wire.edge",
        "cloud_sync.wire",
        "fleet_common.wire",
        "fleet_common.wire.cloud",
        "edge.cli",
        "edge.config",
    ],
)
def test_light_modules_load_nothing_heavy(module: str) -> None:
    loaded = _modules_after_import(module)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"{module} pulls in {heavy}"


# ---------------------------------------------------------------------- the console
# The console's Qt-free core: plain asyncio + httpx (+ zeroconf), tested without Qt. Every module
# under console/services (the services) and console/models (the pages' models) is found here by
# itself, so a new one is checked without anyone listing it.
CONSOLE = ROOT / "console"
QT = ("PySide6", "shiboken6", "qasync", "pyqtgraph")
CONSOLE_SERVICES_FORBIDDEN = (*QT, "av", "cv2", "numpy", "sqlalchemy", "edge")
# Only the shell imports Qt: console/ui (widgets), console/presenters (QObjects), and the start-up
# modules around them: the composition root, the command line (only inside functions, after the
# arguments are parsed) and the GUI-thread garbage collector it installs.
QT_PACKAGES = ("ui", "presenters")
QT_START_UP = frozenset({"app.py", "cli.py", "qtgc.py"})


def _console_modules(*packages: str) -> list[str]:
    """Dotted names of every module of ``console`` (or of its ``packages``), packages included;
    never ``console.__main__`` (importing it starts the program)."""
    folders = [CONSOLE / p for p in packages] if packages else [CONSOLE]
    names = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] != "__main__":
                names.append(".".join(parts))
    return names


def _imported(path: Path) -> list[tuple[str, int]]:
    """Every absolute import in the file, at any depth (inside functions too): (module, line)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


CONSOLE_CORE = _console_modules("services", "models")


def test_the_console_core_is_found() -> None:
    # The discovery above finds modules (else the checks below would pass on nothing).
    assert {"console.services", "console.services.edge_client", "console.services.settings",
            "console.models", "console.models.config_form"} <= set(CONSOLE_CORE)  # fmt: skip


@pytest.mark.parametrize("module", CONSOLE_CORE)
def test_console_services_and_models_stay_qt_free_and_light(module: str) -> None:
    loaded = _modules_after_import(module)
    heavy = sorted(m for m in loaded if m.split(".")[0] in CONSOLE_SERVICES_FORBIDDEN)
    assert not heavy, f"{module} pulls in {heavy}"


def test_no_console_module_loads_edge() -> None:
    """The console speaks to the edge through fleet_common's wire types only: importing any
    console module, in a fresh interpreter, leaves ``edge`` unloaded."""
    code = (
        "import importlib, json, sys\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    importlib.import_module(name)\n"
        "    if 'edge' in sys.modules:\n"
        "        print(json.dumps(name)); break\n"
        "else:\n"
        "    print(json.dumps(None))\n"
    )
    modules = _console_modules()
    assert len(modules) > len(CONSOLE_CORE)
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(modules)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )  # fmt: skip
    assert json.loads(out.stdout) is None, f"importing {json.loads(out.stdout)} loads edge"


def test_no_console_module_imports_edge_even_lazily() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted(CONSOLE.rglob("*.py"))
        for name, line in _imported(path)
        if name.split(".")[0] == "edge"
    ]
    assert not found


def test_only_the_shell_imports_qt() -> None:
    found = []
    for path in sorted(CONSOLE.rglob("*.py")):
        inside = path.relative_to(CONSOLE).parts
        if inside[0] in QT_PACKAGES or (len(inside) == 1 and inside[0] in QT_START_UP):
            continue
        found += [
            f"{path.relative_to(ROOT)}:{line} imports {name}"
            for name, line in _imported(path)
            if name.split(".")[0] in QT
        ]
    assert not found, "Qt outside console/ui, console/presenters and the start-up modules"


def test_the_qt_scan_sees_qt_imports() -> None:
    # The scan above is not blind: it finds the shell's own Qt imports, lazy ones included.
    assert "PySide6.QtCore" in {name for name, _ in _imported(CONSOLE / "ui" / "settings.py")}
    assert "qasync" in {name for name, _ in _imported(CONSOLE / "cli.py")}


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
