"""What a running backlog shows: done, pending, failed, the share of the binding limit in use, and an ETA.

On a terminal, a rich progress bar on stderr, redrawn in place; otherwise (a log, CI) one plain line every
:data:`PLAIN_EVERY` seconds and one at the end. The share of the limit is measured, not assumed: the calls the
connector's throttle let through (a :data:`Meter` in this process, or the counts Celery workers report with
each result) over the last :data:`RATE_WINDOW` seconds, against the limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dsr_framework.batch.store import Counts
from dsr_framework.display import human_duration

__all__ = ["CallRate", "Display", "Meter", "PlainDisplay", "RichDisplay", "View", "display_for"]

#: Cumulative remote calls by API made in this process (a connector's throttle counts them).
Meter = Callable[[], Mapping[str, int]]
RATE_WINDOW = 10.0
PLAIN_EVERY = 10.0


class CallRate:
    """Remote calls per second by API over the last :data:`RATE_WINDOW` seconds; thread-safe."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._events: deque[tuple[float, str, int]] = deque()
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def add(self, calls: Mapping[str, int], at: float | None = None) -> None:
        moment = time.monotonic() if at is None else at
        with self._lock:
            self._events.extend((moment, api, n) for api, n in calls.items() if n)

    def per_second(self, api: str, now: float | None = None) -> float:
        moment = time.monotonic() if now is None else now
        with self._lock:
            while self._events and self._events[0][0] < moment - self._window:
                self._events.popleft()
            total = sum(n for _, name, n in self._events if name == api)
        span = min(self._window, max(moment - self._started, 1.0))
        return total / span


class MeterReader:
    """Turns a cumulative :data:`Meter` into increments for a :class:`CallRate`."""

    def __init__(self, meter: Meter, rate: CallRate) -> None:
        self._meter, self._rate = meter, rate
        self._last = dict(meter())

    def read(self) -> None:
        now = dict(self._meter())
        self._rate.add({api: n - self._last.get(api, 0) for api, n in now.items()})
        self._last = now


@dataclass(frozen=True)
class View:
    """One frame: the counts, the measured share of the binding limit, the ETA and the next check."""

    counts: Counts
    limit: tuple[str, float, float] | None = None  #: (api, share of the limit in use, target share)
    eta: float | None = None
    next_check: float | None = None  #: seconds until the next check, when nothing is in flight

    def detail(self) -> str:
        c = self.counts
        parts = [f"{c.completed:,} completed", f"{c.failed:,} failed", f"{c.open:,} pending"]
        if c.in_flight:
            parts.append(f"{c.in_flight:,} in flight")
        elif self.next_check is not None and c.open:
            parts.append(f"next check in {human_duration(self.next_check)}")
        if self.limit is not None:
            api, share, target = self.limit
            parts.append(f"{api} at {share:.0%} of its limit (target {target:.0%})")
        if self.eta is not None and c.open:
            parts.append(f"ETA {human_duration(self.eta)}")
        return " · ".join(parts)


class Display(Protocol):
    def update(self, view: View) -> None: ...

    def close(self) -> None: ...


class RichDisplay:
    """A progress bar redrawn in place on a terminal."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(TextColumn("[bold]final"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[detail]}"), console=console, transient=False)
        self._task = self._progress.add_task("backlog", total=None, detail="")
        self._progress.start()

    def update(self, view: View) -> None:
        self._progress.update(self._task, total=view.counts.total, completed=view.counts.final, detail=view.detail())

    def close(self) -> None:
        self._progress.stop()


class PlainDisplay:
    """One line every ``every`` seconds (and the last one when closed), for logs and pipes."""

    def __init__(self, console: Console, every: float = PLAIN_EVERY) -> None:
        self._console, self._every = console, every
        self._last = float("-inf")
        self._view: View | None = None

    def update(self, view: View) -> None:
        self._view = view
        if time.monotonic() - self._last >= self._every:
            self._print()

    def close(self) -> None:
        if self._view is not None:
            self._print()

    def _print(self) -> None:
        assert self._view is not None
        c = self._view.counts
        self._console.print(f"{c.final:,}/{c.total:,} final · {self._view.detail()}", soft_wrap=True,
                            highlight=False, markup=False)
        self._last = time.monotonic()


def display_for(console: Console) -> Display:
    """A progress bar on a terminal, plain lines otherwise."""
    return RichDisplay(console) if console.is_terminal else PlainDisplay(console)
