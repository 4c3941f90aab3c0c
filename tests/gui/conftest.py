"""GUI tests: Qt offscreen, async tests on a qasync loop, real edges on loopback.

Only tests under ``tests/gui`` get the qasync loop: pytest-asyncio asks the
``pytest_asyncio_loop_factories`` hook through the item's own conftests, and this is the only
conftest that implements it. Edge tests elsewhere keep asyncio's default loop.

Fixtures for every GUI test module:

- ``live_edge``: ``await live_edge(name="bay 1")`` → :class:`LiveEdge`, an in-process edge on a
  synthetic camera served by a real uvicorn server on ``127.0.0.1:0`` (on the test's qasync
  loop); its own data folder, device id and API keys (``.keys.viewer`` / ``.operator`` /
  ``.admin``); ``await it.stop_serving()`` makes it unreachable.
- ``edge_process``: ``await edge_process(name="bay 1")`` → :class:`tests.support.edge_process.
  EdgeProcess` with ``.keys``, a ``carwash-edge run`` subprocess (zeroconf pinned to 127.0.0.1).
  Use these when the console's loop must not also carry the edges (stall measurements).
- ``rig``: a :class:`tests.support.lock_sim.LockRig`, simulated lock boards (:data:`LOCK_BOARDS`:
  carts 1-4 on unit 1, 5-6 on unit 2) on a socat pty pair; pass
  ``locks=rig.config.model_dump(mode="json")`` to ``live_edge`` and ``await edge.start_locks()``.
  Request it before ``live_edge``: the boards then outlive the edge that drives them.
- ``qsettings``: a QSettings in an ini file under tmp_path (never the user's real settings).
- ``console_factory``: ``await console_factory(edges=[(bay.url, bay.keys.viewer)], layout=(2, 2))``
  → a started :class:`console.app.ConsoleApp`, window shown (offscreen), discovery off unless
  ``discovery=True`` (then pinned to 127.0.0.1); closed after the test.

Inside an ``async`` test use :func:`wait_signal` / :func:`wait_until` (below) rather than
``qtbot.waitSignal`` / ``qtbot.waitUntil``: those spin a nested Qt event loop, in which qasync
would try to step other asyncio tasks while the test's own task is still running ("Cannot enter
into task ... while another task is being executed"). In plain (sync) tests qtbot's work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

# Before any QApplication exists: no display needed unless a test asks for xcb itself.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Consoles started as subprocesses (screenshot tests) keep API keys in their own config folder,
# never in the desktop's keyring of whoever runs the tests.
os.environ["CARWASH_CONSOLE_KEYRING"] = "0"

import pytestqt.plugin
import qasync
from PySide6.QtCore import QEvent, QSettings, SignalInstance
from PySide6.QtWidgets import QApplication

from console.qtgc import gui_thread_gc
from edge.discovery import device_id
from edge.keys import KeyStore
from edge.service import Edge
from tests.conftest import EdgeFactory, Keys, first_frame
from tests.support.edge_process import EdgeProcess
from tests.support.lock_sim import LockRig
from tests.support.serve_edge import EdgeServer, start_edge_server

_loops: list[asyncio.AbstractEventLoop] = []  # the qasync loop of the current test, if any


class _QasyncLoop(qasync.QEventLoop):  # type: ignore[misc]
    """qasync's loop, except that the last ``processEvents()`` of ``run_until_complete``
    (after ``run_forever`` has returned) still counts as inside the loop: asyncio callbacks
    due at that moment (a uvicorn server's tick, a presenter's timer) would otherwise run with
    no running loop and fail."""

    def _after_run_forever(self) -> None:
        super()._after_run_forever()
        asyncio.events._set_running_loop(self)

    def run_until_complete(self, future: Any) -> Any:
        try:
            return super().run_until_complete(future)
        finally:
            asyncio.events._set_running_loop(None)


def _qasync_loop() -> asyncio.AbstractEventLoop:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    # Closing a test's last window must not quit Qt's loop (it is the test's asyncio loop).
    app.setQuitOnLastWindowClosed(False)
    loop = _QasyncLoop(app)
    # asyncio.to_thread on a standard pool (threads named asyncio_*): closing the loop shuts it
    # down and waits, so the thread-leak check sees no stray QThreads.
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="asyncio_gui")
    )
    _loops[:] = [loop]
    return loop


def _process_events_as_the_loop() -> None:
    """pytest-qt's ``processEvents()`` between setup, call and teardown, run as if the test's
    qasync loop were running: qasync schedules asyncio callbacks as Qt timer events, and outside
    a running loop they fail ("no running event loop", e.g. a uvicorn server's tick)."""
    app = QApplication.instance()
    if app is None:
        return
    loop = _loops[0] if _loops else None
    if loop is None or loop.is_closed() or loop.is_running():
        app.processEvents()
        return
    asyncio.events._set_running_loop(loop)
    try:
        app.processEvents()
    finally:
        asyncio.events._set_running_loop(None)


pytestqt.plugin._process_events = _process_events_as_the_loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    if item.path.name.startswith("test_screenshots"):
        # These drive console *subprocesses* under Xvfb and serve in-process edges: no Qt in
        # this process, so the plain asyncio loop, as for every edge test. (Under qasync, two
        # CI runs crashed inside Qt's event loop while such a test waited on its subprocess.)
        return {"asyncio": asyncio.new_event_loop}
    return {"qasync": _qasync_loop}


@pytest.fixture(autouse=True)
def _gc_on_the_gui_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """As in the console (console/qtgc.py): cyclic garbage is collected on the GUI thread only,
    never in a worker thread where a Qt object would be destroyed off its thread."""
    if request.node.path.name.startswith("test_screenshots"):  # no Qt objects in this process
        yield
        return
    request.getfixturevalue("qapp")
    with gui_thread_gc():
        yield


async def wait_signal(signal: SignalInstance, timeout_s: float = 5.0) -> tuple[Any, ...]:
    """The arguments of the next emission of ``signal``, awaited on the loop."""
    future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    def received(*args: Any) -> None:
        if not future.done():
            future.set_result(args)

    signal.connect(received)
    try:
        return await asyncio.wait_for(future, timeout_s)
    finally:
        signal.disconnect(received)


async def wait_until(
    predicate: Callable[[], Any], timeout_s: float = 5.0, what: str = "", interval_s: float = 0.02
) -> float:
    """Wait until ``predicate()`` is true (checked every ``interval_s`` on the running loop);
    returns the seconds it took. Fails the test with ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout_s:
            pytest.fail(f"not true within {timeout_s} s: {what or predicate}")
        await asyncio.sleep(interval_s)
    return loop.time() - start


def synthetic(width: int = 320, height: int = 180, fps: float = 5) -> str:
    return f"synthetic://?width={width}&height={height}&fps={fps:g}"


# ---------------------------------------------------------------------- in-process edges
@dataclass
class LiveEdge:
    """An in-process edge served over real HTTP on loopback."""

    edge: Edge
    server: EdgeServer
    keys: Keys
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def name(self) -> str:
        return self.edge.config.name

    async def stop_serving(self) -> None:
        """Close the HTTP server: from now on the edge is unreachable."""
        await self.server.stop()


LiveEdgeFactory = Callable[..., Awaitable[LiveEdge]]


@pytest_asyncio.fixture
async def live_edge(tmp_path: Path, edge_factory: EdgeFactory) -> AsyncIterator[LiveEdgeFactory]:
    """``await live_edge(name=..., site=..., width=, height=, fps=, **config_sections)``."""
    servers: list[EdgeServer] = []

    async def factory(
        name: str | None = None,
        site: str = "test-site",
        *,
        width: int = 320,
        height: int = 180,
        fps: float = 5,
        wait_frame: bool = True,
        **sections: Any,
    ) -> LiveEdge:
        n = len(servers) + 1
        data_dir = tmp_path / f"edge-{n}"
        data_dir.mkdir()
        keys = Keys(KeyStore.in_dir(data_dir))
        sections.setdefault("camera", {}).setdefault("source", synthetic(width, height, fps))
        edge = edge_factory(name=name or f"bay {n}", site=site, data_dir=str(data_dir), **sections)
        edge.device_id = device_id(data_dir)  # one id per edge, as on separate Pis
        server = await start_edge_server(edge)
        servers.append(server)
        if wait_frame:
            await first_frame(edge)
        return LiveEdge(edge, server, keys, data_dir)

    yield factory
    for server in servers:  # before edge_factory stops the cameras
        await server.stop()


# ---------------------------------------------------------------------- edge subprocesses
class KeyedEdgeProcess(EdgeProcess):
    keys: Keys


EdgeProcessFactory = Callable[..., Awaitable[KeyedEdgeProcess]]


@pytest_asyncio.fixture
async def edge_process(tmp_path: Path) -> AsyncIterator[EdgeProcessFactory]:
    """``await edge_process(name=..., width=, height=, fps=, plates=, *extra_args)``: started and
    listening (its stream may still be coming online); stopped at the end of the test."""
    started: list[KeyedEdgeProcess] = []

    async def factory(
        name: str | None = None,
        *args: str,
        width: int = 320,
        height: int = 180,
        fps: float = 5,
        site: str = "test-site",
        plates: str = "none",
    ) -> KeyedEdgeProcess:
        n = len(started) + 1
        data_dir = tmp_path / f"edge-proc-{n}"
        data_dir.mkdir()
        keys = Keys(KeyStore.in_dir(data_dir))
        config = data_dir / "edge.toml"
        # Plates off unless asked for: four edges loading OCR models on two cores would measure
        # the machine, not the console (the edges run on their own Pis in production).
        config.write_text(f'site = "{site}"\n[plates]\npolicy = "{plates}"\n', encoding="utf-8")
        proc = KeyedEdgeProcess(
            data_dir, "--config", str(config), "--source", synthetic(width, height, fps),
            "--name", name or f"bay {n}", *args, log_level="info",
        )  # fmt: skip
        proc.keys = keys
        started.append(proc)
        await asyncio.to_thread(proc.start)
        return proc

    yield factory
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in started))


CLOSE_TIMEOUT_S = 15.0


# ---------------------------------------------------------------------- lock boards
# Two boards: carts 1-4 on unit 1, carts 5-6 on unit 2.
LOCK_BOARDS = [{"unit": 1, "locks": 4}, {"unit": 2, "locks": 2}]


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LockRig]:
    folder = tmp_path / "bus"
    folder.mkdir()
    started = await LockRig.start(folder, boards=LOCK_BOARDS)
    yield started
    await started.close()  # after the edge (set up later, so stopped first)


# ---------------------------------------------------------------------- settings
@pytest.fixture
def qsettings(tmp_path: Path) -> Iterator[QSettings]:
    settings = QSettings(str(tmp_path / "console.ini"), QSettings.Format.IniFormat)
    yield settings
    settings.sync()


# ---------------------------------------------------------------------- the whole console
@pytest_asyncio.fixture
async def console_factory(
    tmp_path: Path, qsettings: QSettings, qapp: QApplication
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``console = await console_factory(edges=[(url, api_key), ...], discovery=False, ...)``:
    a started :class:`console.app.ConsoleApp` (window shown offscreen) with its settings and
    credentials under tmp_path; closed at the end of the test."""
    from console.app import ConsoleApp, ConsoleOptions

    made: list[ConsoleApp] = []

    async def factory(
        edges: Sequence[tuple[str, str | None]] = (), *, show: bool = True, **options: Any
    ) -> ConsoleApp:
        options.setdefault("discovery", False)
        options.setdefault("interfaces", ["127.0.0.1"])  # never multicast off the machine
        options.setdefault("keyring", False)  # never the desktop's keyring
        console = ConsoleApp(
            qapp,
            ConsoleOptions(edges=[url for url, _key in edges], **options),
            qsettings=qsettings,
            config_dir=tmp_path / "console-config",
        )
        made.append(console)
        for url, key in edges:
            if key:
                console.credentials.set(url, key)
        await console.start()
        if show:
            console.window.show()
        return console

    yield factory
    for console in made:
        console.window.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await console.aclose()
        except TimeoutError:  # name what still runs rather than hang the whole run
            pending = "\n".join(repr(t) for t in asyncio.all_tasks() if not t.done())
            pytest.fail(f"the console did not close within {CLOSE_TIMEOUT_S} s:\n{pending}")
        console.window.deleteLater()
    # Delete the windows now, inside this test, not whenever Qt next processes events (which
    # may be in a later test, on another loop): a clean-clone CI run crashed in such a
    # processEvents() call made between the phases of a later test.
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    made.clear()
    gc.collect()
