"""The Acme connector's conformance target and oracle (entry point ``dsr.conformance: acme``).

``pytest --dsr-conformance=acme`` starts the simulator through :func:`target`, seeds one contact before
each check, drives the connector through the host facade, and asks :class:`SimulatorOracle` what really
happened in the "service".
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dsr_framework.conformance import ConformanceTarget

from .simulator import AcmeSimulator

__all__ = ["SimulatorOracle", "target"]

EXISTING = {"email": "pat.doe@example.com"}
MISSING = {"email": "nobody.here@example.com"}
RECORDS = [{"type": "order", "item": "blue kettle", "order_id": "A-1042"},
           {"type": "ticket", "subject": "kettle arrived dented", "ticket_id": "T-77"}]


class SimulatorOracle:
    """The simulator's own state: the ground truth the harness judges the connector against."""

    def __init__(self, simulator: AcmeSimulator) -> None:
        self.simulator = simulator

    def exists(self, subject: Mapping[str, str]) -> bool:
        return self.simulator.exists(subject["email"])

    def opted_out(self, subject: Mapping[str, str], regulation: str) -> bool:
        return self.simulator.opted_out(subject["email"], regulation)

    def held_data(self, subject: Mapping[str, str]) -> list[str]:
        return [str(value) for record in self.simulator.records(subject["email"]) for value in record.values()]

    def writes(self) -> int:
        return self.simulator.writes()


@contextmanager
def target() -> Iterator[ConformanceTarget]:
    """The simulator with jobs that take 10 ms, polled every 10 ms."""
    key = secrets.token_urlsafe(24)  # random: no fragment of it can be an ordinary word in a message
    simulator = AcmeSimulator(api_key=key, processing_seconds=0.01)
    with simulator.running():
        good = {"api_key": key, "base_url": simulator.url, "poll_interval_seconds": 0.01, "timeout_seconds": 2}
        bad = {**good, "api_key": secrets.token_urlsafe(24)}

        def prepare() -> None:
            simulator.reset()
            simulator.seed(EXISTING["email"], RECORDS)

        yield ConformanceTarget(good_config=good, bad_config=bad, existing_subject=EXISTING, missing_subject=MISSING,
                                oracle=SimulatorOracle(simulator), prepare=prepare, allowed_hosts={"127.0.0.1"},
                                min_check_interval=0.01, call_seconds=2, max_calls=10,
                                budgets={"handle_access": 5, "handle_deletion": 5, "handle_opt_out": 5})
