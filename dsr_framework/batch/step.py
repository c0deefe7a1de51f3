"""One step of one request: the calls that are due now, through the host facade, each result handed on at once.

Embedded threads and Celery workers run the same step. It is :func:`dsr_framework.drive.drive` with
``max_wait=0``: the request is called with its stored state, and called again only while the connector asks
to be called at once; a result that asks to wait ends the step, and the runner (not a sleeping worker)
brings the request back at its ``next_check_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dsr_framework.drive import drive
from dsr_framework.models import DsrRequest, Result

__all__ = ["Handler", "Job", "Sink", "run_step"]

#: One hook call for a request, given its state: ``ConnectorHandle.handle`` (which never raises).
Handler = Callable[[DsrRequest, Mapping[str, Any] | None], Result]


@dataclass(frozen=True)
class Job:
    """A claimed request to drive one step: the request, its stored state and the claim's token."""

    request: DsrRequest
    state: Mapping[str, Any] | None
    token: str


class Sink(Protocol):
    """Where a step's results go (the runner: the store, the progress)."""

    def accept(self, request_id: str, token: str, result: Result, calls: Mapping[str, int] | None = None) -> None:
        """Record one call's result (``calls``: the remote calls it made by API, when the worker knows)."""

    def finished(self, request_id: str, token: str) -> None:
        """The step holding ``token`` ended: release its claim."""

    def reclaim(self, request_id: str, token: str) -> Job | None:
        """The step holding ``token`` was lost: the same request under a new claim (None if ``token`` no
        longer holds it)."""


def run_step(handler: Handler, job: Job, on_result: Callable[[Result], None]) -> Result:
    """Call the connector for ``job`` until its result is final or asks to wait; every result goes to
    ``on_result`` as soon as it arrives. An exception (a handler that is not the facade) becomes a failed
    result of class ``internal``, so no request is left hanging."""
    try:
        return drive(lambda state: handler(job.request, state), state=job.state, max_wait=0,
                     on_result=on_result).result
    except Exception as exc:  # noqa: BLE001 - the facade never raises; a bare handler might
        failed = Result.failed(job.request, "internal", f"the connector call raised {type(exc).__name__}")
        on_result(failed)
        return failed
