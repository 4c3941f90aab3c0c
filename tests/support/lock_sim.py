"""Lock boards for tests: the simulator (edge/locks/sim.py) on a socat pty pair, and a driver.

``LockRig`` owns the virtual cable and the simulated boards. The simulator runs on an event
loop in a thread of its own, like a board that does not wait for the edge: the test's loop
(with the lock service, the event log and the store on it) never delays a board's answer.
``unplug()`` stops the simulator and ends socat (both pty ends vanish, as when the RS485
adapter is pulled), ``plug_in()`` brings them back on the same paths.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import LocksConfig
from edge.locks.sim import LockBoardSim, PtyPair

POLL_HZ = 4.0  # period 0.25 s
TIMEOUT_S = 0.1  # room for a loaded CI machine; (retries + 1) x 0.1 < one period


def locks_config(port: Path | str, **overrides: Any) -> LocksConfig:
    data: dict[str, Any] = {
        "enabled": True, "port": str(port), "poll_hz": POLL_HZ, "timeout_s": TIMEOUT_S,
        "retries": 1, "confirm_timeout_s": 0.6, "fault_after_s": 0.8, "unlock_hold_s": 30.0,
        "boards": [{"unit": 1, "locks": 4}],
    }  # fmt: skip
    data.update(overrides)
    return LocksConfig.model_validate(data)


class SimThread:
    """An event loop in a thread for the simulator."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lock-sim")
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, None]) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call(self, fn: Callable[[], None]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class LockRig:
    pair: PtyPair
    sim: LockBoardSim
    config: LocksConfig
    thread: SimThread

    @classmethod
    async def start(cls, folder: Path, **overrides: Any) -> LockRig:
        pair = PtyPair(folder)
        await asyncio.to_thread(pair.start)
        config = locks_config(pair.edge_path, **overrides)
        sim = LockBoardSim.for_boards(config.boards, str(pair.board_path), actuation_s=0.03)
        thread = SimThread()
        await thread.run(sim.start())
        return cls(pair, sim, config, thread)

    async def stop_sim(self) -> None:
        await self.thread.run(self.sim.stop())

    async def start_sim(self) -> None:
        await self.thread.run(self.sim.start())

    def noise(self, data: bytes) -> None:
        """Bytes on the line now, from the board's side."""
        self.thread.call(lambda: self.sim.send_raw(data))

    async def unplug(self) -> None:
        await self.stop_sim()
        await asyncio.to_thread(self.pair.stop)

    async def plug_in(self) -> None:
        await asyncio.to_thread(self.pair.start)
        await self.start_sim()

    async def close(self) -> None:
        await self.unplug()
        await asyncio.to_thread(self.thread.close)


async def wait_until(check: Callable[[], bool], within_s: float = 3.0, what: str = "") -> float:
    """Poll ``check`` on the loop every 5 ms; return the seconds it took (fail after the bound)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within_s:
            raise AssertionError(f"not within {within_s} s: {what or check}")
        await asyncio.sleep(0.005)
    return time.monotonic() - start
