"""carwash-console without a display says so and exits 2 (not Qt's SIGABRT)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from console.cli import no_display_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        ({}, False),
        ({"DISPLAY": ":0"}, True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, True),
        ({"QT_QPA_PLATFORM": "offscreen"}, True),
        ({"QT_QPA_PLATFORM": "xcb"}, False),
        ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}, True),
        ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":1"}, True),
    ],
)
def test_no_display_problem(env: dict[str, str], ok: bool) -> None:
    assert (no_display_problem(env, "linux") == "") is ok
    assert no_display_problem({}, "darwin") == ""


def test_the_console_without_a_display_exits_2_with_a_sentence(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # fmt: skip
    env["HOME"] = str(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    env["XDG_STATE_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "console", "--no-discovery"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no display" in done.stderr
    assert "Reinstalling" not in done.stderr
