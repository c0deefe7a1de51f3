"""A per-call time limit the harness enforces from outside the connector.

Each hook call runs in a daemon thread (inside a copy of the caller's context, so context variables behave
as in a host). The caller waits at most the limit: a call still running then is reported and abandoned (a
thread cannot be killed; it is a daemon, so it never keeps the process alive); a call that returns, but
later than the limit, is reported too.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Overran", "call_with_limit"]

T = TypeVar("T")


class Overran(Exception):
    """A call took longer than its limit; ``finished`` says whether it had returned when the wait ended."""

    def __init__(self, elapsed: float, limit: float, finished: bool) -> None:
        self.elapsed, self.limit, self.finished = elapsed, limit, finished
        state = f"returned after {elapsed:.2f}s" if finished else f"was still running after {elapsed:.2f}s"
        super().__init__(f"{state}, over its per-call limit of {limit:g}s")


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None
        self.ended: float | None = None


def call_with_limit(function: Callable[[], T], limit: float, name: str = "hook call",
                    on_thread: Callable[[threading.Thread], None] | None = None) -> tuple[T, float]:
    """Run ``function``; return its value and the seconds it took, or raise :class:`Overran`.

    An exception from ``function`` is re-raised here, in the caller's thread. ``on_thread`` is handed the
    thread the call will run in, before it starts (the harness counts it as the connector's).
    """
    outcome: _Outcome[T] = _Outcome()
    context = contextvars.copy_context()
    started = time.monotonic()

    def run() -> None:
        try:
            outcome.value = context.run(function)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome.error = exc
        finally:
            outcome.ended = time.monotonic()

    worker = threading.Thread(target=run, name=f"conformance {name}", daemon=True)
    if on_thread is not None:
        on_thread(worker)
    worker.start()
    worker.join(limit + 0.05)  # a little slack for the thread switch, not for the call
    if outcome.ended is None:
        raise Overran(time.monotonic() - started, limit, finished=False)
    elapsed = outcome.ended - started
    if outcome.error is not None:
        raise outcome.error
    if elapsed > limit:
        raise Overran(elapsed, limit, finished=True)
    return outcome.value, elapsed  # type: ignore[return-value]  # set when the call returned
