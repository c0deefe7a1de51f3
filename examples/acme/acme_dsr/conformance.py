"""The Acme connector's conformance target, its oracle and its witness (entry point ``dsr.conformance: acme``).

``pytest --dsr-conformance=acme`` starts the simulator through :func:`target`, seeds three contacts before each
check (the subject, a namesake of the subject, and someone else), drives the connector through the host
facade, and asks :class:`SimulatorOracle` what really happened in the "service". :class:`StorageWitness`
answers the same questions from the simulator's raw store, by a path of its own: the harness fails the run
when the two disagree.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dsr_framework.conformance import ConformanceTarget

from .simulator import AcmeSimulator

__all__ = ["SimulatorOracle", "StorageWitness", "target"]

EXISTING = {"email": "pat.doe@example.com", "customer_id": "AC-1042"}
MISSING = {"email": "nobody.here@example.com", "customer_id": "AC-9999"}
#: Other people in Acme: a namesake of the subject (same name, the same email at another domain) and someone else.
BYSTANDERS = ({"email": "pat.doe@example.org", "customer_id": "AC-2077"},
              {"email": "sam.roe@example.com", "customer_id": "AC-3090"})
#: Each person's records, in the order of (EXISTING, *BYSTANDERS).
RECORDS = (
    [{"type": "profile", "name": "Pat Doe", "phone": "+1 415 555 0134"},
     {"type": "order", "item": "blue kettle", "order_id": "A-1042"},
     {"type": "ticket", "subject": "kettle arrived dented", "ticket_id": "T-77"}],
    [{"type": "profile", "name": "Pat Doe", "phone": "+44 20 7946 0958"},
     {"type": "order", "item": "garden hose", "order_id": "A-2210"}],
    [{"type": "profile", "name": "Sam Roe", "phone": "+1 212 555 0199"},
     {"type": "ticket", "subject": "refund for a toaster", "ticket_id": "T-91"}],
)


class SimulatorOracle:
    """The simulator's own state: the ground truth the harness judges the connector against."""

    def __init__(self, simulator: AcmeSimulator) -> None:
        self.simulator = simulator

    def exists(self, subject: Mapping[str, str]) -> bool:
        return self.simulator.exists(subject)

    def opted_out(self, subject: Mapping[str, str], regulation: str) -> bool:
        return self.simulator.opted_out(subject, regulation)

    def held_data(self, subject: Mapping[str, str]) -> list[str]:
        return [str(value) for record in self.simulator.records(subject) for value in record.values()]

    def writes(self) -> int:
        return self.simulator.writes()

    def calls(self) -> list[tuple[float, str]]:
        return self.simulator.calls()


class StorageWitness:
    """The same questions, answered from the simulator's raw store (its JSON dump), not through its lookups."""

    def __init__(self, simulator: AcmeSimulator) -> None:
        self.simulator = simulator

    def _contact(self, subject: Mapping[str, str]) -> dict[str, Any] | None:
        stored = json.loads(self.simulator.dump())["contacts"]
        email, customer_id = subject.get("email", "").lower(), subject.get("customer_id")
        return next((c for c in stored if c["email"] == email or (customer_id and c["customer_id"] == customer_id)),
                    None)

    def exists(self, subject: Mapping[str, str]) -> bool:
        return self._contact(subject) is not None

    def opted_out(self, subject: Mapping[str, str], regulation: str) -> bool:
        contact = self._contact(subject)
        return contact is not None and regulation in contact["opted_out"]

    def held_data(self, subject: Mapping[str, str]) -> list[str]:
        contact = self._contact(subject)
        return [str(v) for record in (contact["records"] if contact else []) for v in record.values()]

    def writes(self) -> int:
        count: int = json.loads(self.simulator.dump())["writes"]
        return count


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
            for person, records in zip((EXISTING, *BYSTANDERS), RECORDS, strict=True):
                simulator.seed(person["email"], records, customer_id=person["customer_id"])

        personal = [str(record[k]) for records in RECORDS for record in records for k in ("name", "phone")
                    if k in record]
        yield ConformanceTarget(good_config=good, bad_config=bad, existing_subject=EXISTING, missing_subject=MISSING,
                                oracle=SimulatorOracle(simulator), witness=StorageWitness(simulator),
                                bystanders=BYSTANDERS, personal_data=personal, prepare=prepare,
                                allowed_hosts={"127.0.0.1"}, min_check_interval=0.01, call_seconds=2, max_calls=10,
                                budgets={"handle_access": 5, "handle_deletion": 5, "handle_opt_out": 5})
