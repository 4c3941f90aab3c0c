"""The command line's common options on either side of a command, and Ctrl-C at any moment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge import cli
from edge.config import EdgeConfig
from fleet_common.cli import EXIT_INTERRUPTED, Commands, base_parser

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "level", "json_lines"),
    [
        (["run"], "info", False),
        (["run", "--log-level", "debug"], "debug", False),
        (["--log-level", "warning", "run"], "warning", False),
        (["--log-level", "warning", "run", "--log-json"], "warning", True),
        (["--log-json", "run", "--log-level", "error"], "error", True),
        (["keys", "create", "--role", "viewer", "--log-level", "debug"], "debug", False),
        (["keys", "list", "--log-json"], "info", True),
    ],
)
def test_common_options_before_or_after_the_command(
    argv: list[str], level: str, json_lines: bool
) -> None:
    args = cli.build_parser().parse_args(argv)
    assert (args.log_level, args.log_json) == (level, json_lines)


def test_commands_add_the_common_options_to_every_subcommand() -> None:
    parser = base_parser("prog", "test")
    sub = Commands(parser, dest="command")
    one = sub.add("one")
    nested = Commands(one, dest="action")
    nested.add("two")
    args = parser.parse_args(["one", "two", "--log-level", "critical"])
    assert (args.command, args.action, args.log_level) == ("one", "two", "critical")
    with pytest.raises(SystemExit):
        parser.parse_args(["one", "two", "--log-level", "loud"])


def test_a_ctrl_c_before_the_server_runs_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)  # e.g. during the heavy imports
    assert cli.main(["run"]) == EXIT_INTERRUPTED


def test_the_command_line_module_loads_no_pydantic() -> None:
    """A Ctrl-C while pydantic and the config model load must land inside main(), where it
    is an interruption (130), not a traceback: so they load there, not at import."""
    code = "import json, sys, edge.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.split(".")[0] == "pydantic" or m == "edge.config"]


@pytest.mark.parametrize(("listen", "warned"), [("0.0.0.0:0", True), ("127.0.0.1:0", False)])
def test_listening_on_every_interface_is_warned_about(
    listen: str, warned: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import edge.runner

    served: list[str] = []

    def fake_run(config: EdgeConfig, *_: object, **__: object) -> int:
        served.append(config.http.listen)
        return 0

    monkeypatch.setattr(edge.runner, "run", fake_run)
    code = cli.main(["run", "--listen", listen, "--data-dir", str(tmp_path)])
    assert (code, served) == (0, [listen])
    warning = (
        f"WARNING edge: listening on every interface ({listen}): the API is open to every"
        " network this machine is on (plain HTTP; API keys guard it)"
    )
    assert (warning in capsys.readouterr().err) == warned


def test_the_cloud_command_line_takes_them_after_its_commands_too() -> None:
    from cloud_sync.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["user", "list", "--db", "sqlite:///x.db", "--log-level", "debug"])
    assert (args.user_command, args.log_level, args.log_json) == ("list", "debug", False)
    args = parser.parse_args(["--log-level", "error", "serve", "--db", "sqlite:///x.db"])
    assert (args.command, args.log_level) == ("serve", "error")
