"""A real window under Xvfb (QT_QPA_PLATFORM=xcb): screenshots that must not be blank.

Saved to tests/artifacts/ (not committed). Helper E adds the plate feed and device page here
with the same helpers (tests/support/xvfb.py): ``--page plates`` / ``--page device``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.services.credentials import CredentialStore
from tests.gui.conftest import EdgeProcessFactory
from tests.support.xvfb import ARTIFACTS, ConsoleProcess, Xvfb, assert_not_blank

pytestmark = [
    pytest.mark.gui,
    pytest.mark.e2e,
]


@pytest.mark.asyncio
async def test_wall_2x2_screenshot_under_xvfb(
    tmp_path: Path, edge_process: EdgeProcessFactory
) -> None:
    procs = [await edge_process(name=f"Bay {n}", width=640, height=360) for n in range(1, 5)]
    # The keys, stored as the "Add edge" dialog stores them (the console's config folder).
    store = CredentialStore(tmp_path / "config" / "carwash-console" / "credentials.json")
    for proc in procs:
        store.set(proc.url, proc.keys.viewer)
    edges = [arg for p in procs for arg in ("--edge", p.url)]
    with Xvfb() as display:
        console = ConsoleProcess(display, tmp_path, *edges, "--layout", "2x2", "--page", "wall")
        with console:
            found = console.wait_for(r"first picture on screen after (\d+) ms", 60)
            console.wait_for(r"all 4 tiles show live pictures", 30)
            shot = display.screenshot(ARTIFACTS / "wall-2x2.png")
        assert console.stop() == 0, console.log
    print(f"first picture on screen after {found.group(1)} ms; screenshot {shot}")
    assert_not_blank(shot, min_stddev=0.08, min_colours=500)
    assert re.search(r"smoke|Traceback", console.log) is None, console.log
