"""How the servers stop: SIGTERM and SIGINT handled on the event loop, the process's choice.

uvicorn's own handling re-raises the signal once it has shut down, so a service that stopped
cleanly as asked would end "killed by SIGTERM"; each program's server instead calls its own
handler and exits with its own code. A process started with SIGINT ignored (a background job of
a script, as ``scripts/demo`` starts its edges and cloud) keeps ignoring it, as Unix programs
do: the terminal's Ctrl-C reaches the script, which stops its children in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


def handled_signals() -> tuple[signal.Signals, ...]:
    """SIGTERM, and SIGINT unless this process was started with it ignored."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return (signal.SIGTERM,)
    return (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def termination_signals(on_signal: Callable[[signal.Signals], None]) -> Iterator[None]:
    """Within the block, :func:`handled_signals` call ``on_signal`` on the running loop (in the
    main thread only: elsewhere, as in tests serving from a thread, nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    signals = handled_signals()
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
