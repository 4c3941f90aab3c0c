"""``carwash-console``: the site manager's desktop program.

    carwash-console [--edge URL ...] [--interface ADDR ...] [--no-discovery]
                    [--page wall|plates|device|alerts|carts] [--layout 1|2x2|3x3|4x4|RxC]
                    [--smoke-test] [--log-level L] [--log-json]

API keys go to the OS keyring when there is one (Secret Service, Keychain, Credential Manager),
else to a file only the user can read; ``CARWASH_CONSOLE_KEYRING=0`` keeps them in the file.

Exit codes (fleet_common.cli): 0 closed normally (or SIGTERM), 1 failed to start or crashed,
2 bad command line, 130 interrupted (Ctrl-C). Qt and qasync are imported only after the
command line is parsed, so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fleet_common.cli import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, apply_logging, base_parser

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from console.app import ConsoleApp

log = logging.getLogger("console")

STARTED_MONO = time.monotonic()  # as close to process start as this program gets
# "config": the device page's Configuration tab, of the first edge that answers.
PAGES = ("wall", "plates", "device", "alerts", "carts", "config")


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser("carwash-console", "The site manager's live wall of car-wash bays.")
    parser.add_argument(
        "--edge", action="append", default=[], metavar="URL",
        help="watch this edge (http://HOST:PORT); repeatable. Edges on the LAN are found"
        " by themselves (zeroconf)",
    )  # fmt: skip
    parser.add_argument(
        "--interface", action="append", default=None, metavar="ADDR",
        help="look for edges (zeroconf) on this local address only; repeatable"
        " (default: the saved setting, else every interface)",
    )  # fmt: skip
    parser.add_argument(
        "--no-discovery", action="store_true", help="do not look for edges on the LAN"
    )
    parser.add_argument("--page", choices=PAGES, default="wall", help="page shown first")
    parser.add_argument(
        "--layout", metavar="LAYOUT", default=None,
        help="wall layout: 1, 2x2, 3x3, 4x4 or ROWSxCOLS (saved for next time)",
    )  # fmt: skip
    parser.add_argument(
        "--smoke-test", action="store_true",
        help="build the main window offscreen and exit 0 (checks an installed bundle)",
    )  # fmt: skip
    return parser


EXIT_NO_DISPLAY = 2


def no_display_problem(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> str:
    """Why Qt cannot open a window here ("" when it can): on Linux (not macOS or Windows) a
    desktop needs DISPLAY (X11) or WAYLAND_DISPLAY, unless QT_QPA_PLATFORM names one that needs
    neither (offscreen, vnc, eglfs, linuxfb...)."""
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return ""
    names = [n.split(":")[0].strip() for n in env.get("QT_QPA_PLATFORM", "").split(";")]
    names = [n for n in names if n] or ["xcb", "wayland"]
    for name in names:
        if name == "xcb" and env.get("DISPLAY"):
            return ""
        if name.startswith("wayland") and env.get("WAYLAND_DISPLAY"):
            return ""
        if name != "xcb" and not name.startswith("wayland"):
            return ""  # offscreen, vnc, eglfs...: no desktop needed
    return (
        "no display: DISPLAY and WAYLAND_DISPLAY are not set (start it from the desktop, use"
        " ssh -X, or set QT_QPA_PLATFORM=offscreen for a window nobody sees)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from console.services.settings import parse_layout

    layout: tuple[int, int] | None = None
    if args.layout is not None:
        try:
            layout = parse_layout(args.layout)
        except ValueError as err:
            parser.error(str(err))  # exits 2
    apply_logging(args)
    # httpx logs every request at INFO: a 16-tile wall at 2 fps would write 32 lines a second.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    from console.logs import add_file_log

    log_file = add_file_log()
    if args.smoke_test:
        # Before Qt loads: the smoke test never needs (or opens) a display.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    problem = no_display_problem()
    if problem:
        # Qt would abort (SIGABRT, "Reinstalling the application may fix this problem").
        print(f"carwash-console: {problem}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    try:
        return _run(args, layout, log_file)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, layout: tuple[int, int] | None, log_file: Path | None) -> int:
    import qasync  # type: ignore[import-untyped]  # qasync ships no type hints
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from console.app import ConsoleApp, ConsoleOptions
    from console.crash import CrashHandler
    from console.logs import config_dir, log_dir
    from console.qtgc import gui_thread_gc

    _route_qt_messages()
    QApplication.setOrganizationName("CarwashFleet")
    QApplication.setApplicationName("carwash-console")
    app = QApplication(sys.argv[:1])
    # The loop runs until the window has closed *and* everything is shut down (amain).
    app.setQuitOnLastWindowClosed(False)
    crash = CrashHandler(log_dir(), show=lambda summary, path: _crash_dialog(app, summary, path))
    crash.install()
    options = ConsoleOptions(
        keyring=os.environ.get("CARWASH_CONSOLE_KEYRING", "1").strip().lower()
        not in ("0", "false", "no", "off"),
        edges=args.edge,
        interfaces=args.interface,
        discovery=not args.no_discovery,
        page=args.page,
        layout=layout,
        started_mono=STARTED_MONO,
    )
    log.info("carwash-console starting; log file %s", log_file or "(none)")

    async def amain() -> int:
        loop = asyncio.get_running_loop()
        crash.install_loop(loop)
        console = ConsoleApp(app, options, qsettings=QSettings(), config_dir=config_dir())
        if args.smoke_test:
            return await _smoke(app, console)
        closed = asyncio.Event()
        console.window.closing.connect(closed.set)
        with contextlib.suppress(NotImplementedError):  # Windows: no loop signal handlers
            loop.add_signal_handler(signal.SIGTERM, console.window.close)
        await console.start()
        console.window.show()
        await closed.wait()
        log.info("closing")
        await console.aclose()
        console.window.deleteLater()
        return EXIT_OK

    def make_loop() -> asyncio.AbstractEventLoop:
        loop = qasync.QEventLoop(app)
        # JPEG decoding (asyncio.to_thread) on a plain thread pool: bounded, shut down with
        # the loop, and free of qasync's QThread executor.
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
        )
        return loop  # type: ignore[no-any-return]

    try:
        with gui_thread_gc(), asyncio.Runner(loop_factory=make_loop) as runner:
            code = runner.run(amain())
    except Exception:
        log.exception("carwash-console failed")
        return EXIT_FAILURE
    finally:
        crash.uninstall()
        # Tear Qt down now, in order, rather than in the interpreter's final garbage collection
        # (where PySide6 may crash on objects already half gone).
        gc.collect()
        app.shutdown()
    return EXIT_FAILURE if crash.crashes and code == EXIT_OK and args.smoke_test else code


def _route_qt_messages() -> None:
    """Qt's own messages go to the log (file and stderr) like everything else."""
    from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

    from console.logs import qt_message_level

    qt_log = logging.getLogger("console.qt")

    def handler(kind: QtMsgType, _context: QMessageLogContext, message: str) -> None:
        qt_log.log(qt_message_level(kind.name, message), "%s", message)

    qInstallMessageHandler(handler)


async def _smoke(app: QApplication, console: ConsoleApp) -> int:
    """Build and show the window, let Qt lay it out and paint once, close it."""
    console.window.show()
    app.processEvents()
    ok = console.window.isVisible() and bool(console.window.pages)
    console.window.close()
    await console.aclose()
    log.info("smoke test %s: %d pages", "passed" if ok else "FAILED", len(console.window.pages))
    return EXIT_OK if ok else EXIT_FAILURE


_dialogs: list[object] = []  # crash dialogs are parentless: keep them alive while shown


def _crash_dialog(app: QApplication, summary: str, path: Path | None) -> None:
    from PySide6.QtWidgets import QMessageBox

    where = f"The details are in\n{path}" if path else "No crash log could be written."
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "Carwash Console: unexpected error",
        f"Something went wrong: {summary}\n\n{where}\n\nThe console carries on; if it"
        " misbehaves, restart it and send the crash log to your IT contact.",
    )
    _dialogs.append(box)
    box.finished.connect(lambda _result: _dialogs.remove(box))
    box.open()  # not exec(): never a nested event loop inside a crash


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
