"""The presenter base: tracked asyncio tasks on the qasync loop, failures as an ``error`` signal.

Every coroutine a presenter starts runs as a task it keeps: a failure is logged and emitted as
``error`` (a sentence for the status bar), never a lost "Task exception was never retrieved";
:meth:`Presenter.close` cancels whatever still runs when the screen goes away.

Two ways to start work::

    self.spawn(self._poll(), name="poll bay 3")     # from plain code or a timer

    @tracked_slot(str)                              # a Qt slot that awaits a service
    async def unlock(self, cart: str) -> None: ...
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from PySide6.QtCore import QObject, Signal
from qasync import asyncSlot  # type: ignore[import-untyped]  # qasync ships no type hints

log = logging.getLogger("console.presenters")

T = TypeVar("T")
P = ParamSpec("P")
PresenterT = TypeVar("PresenterT", bound="Presenter")


def describe_error(exc: BaseException) -> str:
    """A short sentence for people: the exception's own text, or its class name."""
    text = str(exc).strip()
    return text if text else type(exc).__name__


class Presenter(QObject):
    """Base of every presenter. Subclasses add their own signals and slots."""

    error = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # ------------------------------------------------------------------ tasks
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The tasks still running (for tests and for :meth:`aclose`)."""
        return frozenset(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a task of this presenter on the running (qasync) loop.

        A failure becomes an ``error`` emission (and a log line with the traceback); cancellation
        is silent. After :meth:`close` nothing new starts: the coroutine is closed unawaited.
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"{type(self).__name__} is closed")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.report(exc, task.get_name())

    def report(self, exc: BaseException, context: str = "") -> None:
        """Log ``exc`` and emit it as ``error``: what a failed task or slot comes to."""
        log.warning("%s: %s failed: %s", type(self).__name__, context or "task", exc,
                    exc_info=exc)  # fmt: skip
        if not self._closed:
            self.error.emit(describe_error(exc))

    def close(self) -> None:
        """Cancel every task; idempotent. Use :meth:`aclose` to also wait for them to end."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel every task and wait until they have all finished."""
        self.close()
        pending = list(self._tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def tracked_slot(
    *types: type,
) -> Callable[
    [Callable[Concatenate[PresenterT, P], Awaitable[None]]],
    Callable[Concatenate[PresenterT, P], asyncio.Task[None] | None],
]:
    """qasync's ``@asyncSlot`` whose task belongs to the presenter.

    The task is tracked (cancelled by :meth:`Presenter.close`) and a failure is emitted as
    ``error`` instead of reaching ``sys.excepthook``. Returns the task (None when closed).
    """

    def decorator(
        fn: Callable[Concatenate[PresenterT, P], Awaitable[None]],
    ) -> Callable[Concatenate[PresenterT, P], asyncio.Task[None] | None]:
        @functools.wraps(fn)
        async def run(self: PresenterT, *args: P.args, **kwargs: P.kwargs) -> None:
            task = asyncio.current_task()
            if self._closed or task is None:
                return
            self._tasks.add(task)
            try:
                await fn(self, *args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure becomes an error signal
                self.report(exc, fn.__name__)
            finally:
                self._tasks.discard(task)

        slot: Callable[Concatenate[PresenterT, P], asyncio.Task[None] | None]
        slot = asyncSlot(*types)(run)
        return slot

    return decorator
