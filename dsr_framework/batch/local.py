"""Steps on threads of this process: the embedded runner's executor.

Each thread takes a claimed request, runs its step through the connector (whose throttle, shared by every
thread, paces the calls) and hands each result to the runner as it arrives. The threads are daemons: a
second Ctrl-C ends the process without waiting for calls in flight (their requests resume from the state
stored before those calls, which the connector resumes idempotently).
"""

from __future__ import annotations

import queue
import threading

from dsr_framework.batch.step import Handler, Job, Sink, run_step
from dsr_framework.models import Result

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """``workers`` threads driving claimed requests one step each."""

    def __init__(self, handler: Handler, workers: int) -> None:
        self._handler = handler
        self._jobs: queue.Queue[tuple[Job, Sink] | None] = queue.Queue()
        self._done: queue.Queue[str] = queue.Queue()
        self._busy = 0  # only the runner's thread changes it
        self._threads = [threading.Thread(target=self._work, name=f"dsr-batch-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> int:
        return len(self._threads)

    def in_flight(self) -> int:
        return self._busy

    def start(self, jobs: list[Job], sink: Sink) -> None:
        for job in jobs:
            self._busy += 1
            self._jobs.put((job, sink))

    def adopt(self, jobs: list[Job], sink: Sink) -> None:
        """Steps an earlier run had claimed when it ended (its threads ended with it): run them again."""
        self.start(jobs, sink)

    def collect(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for a step to end; how many ended."""
        ended = 0
        try:
            self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
            ended = 1
            while True:
                self._done.get_nowait()
                ended += 1
        except queue.Empty:
            pass
        self._busy -= ended
        return ended

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, sink = item
            request_id, token = job.request.request_id, job.token

            def accept(result: Result, request_id: str = request_id, token: str = token, sink: Sink = sink) -> None:
                sink.accept(request_id, token, result)

            try:
                run_step(self._handler, job, accept)
            finally:
                sink.finished(job.request.request_id, job.token)
                self._done.put(job.request.request_id)
