"""The mParticle connector's conformance target: the sandbox, seeded with one subject.

Registered in the ``dsr.conformance`` entry-point group, so ``pytest --dsr-conformance=mparticle`` runs the
harness against a fresh sandbox.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

from connector_mparticle.sandbox import Durations, Sandbox
from dsr_framework.conformance import ConformanceTarget

__all__ = ["target"]

EXISTING = {"email": "conformance.subject@example.com"}
MISSING = {"email": "never.seen@example.com"}


@contextmanager
def target() -> Iterator[ConformanceTarget]:
    fast = {"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}
    with Sandbox(durations=fast) as sandbox:
        good = sandbox.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 2},
                                        throttle={"max_retry_seconds": 10})
        bad = copy.deepcopy(good)
        # Deliberately wrong credentials: the sandbox must refuse them.
        bad["dsr"]["auth"]["secret"] = "conformance-wrong-workspace-secret"  # noqa: S105
        bad["inputs"]["auth"]["secret"] = "conformance-wrong-input-secret"  # noqa: S105

        def prepare() -> None:
            sandbox.reset()
            sandbox.seed_profile(EXISTING, attributes={"plan": "basic"}, batches=[
                {"environment": "production",
                 "events": [{"event_type": "screen_view", "data": {"screen_name": "Home"}}]}])

        def writes() -> int:
            stats = sandbox.stats()
            return stats["dsrs"] + stats["batches_stored"]

        prepare()
        yield ConformanceTarget(good_config=good, bad_config=bad, existing_subject=EXISTING,
                                missing_subject=MISSING, prepare=prepare, remote_writes=writes,
                                budgets={"handle_access": 20, "handle_deletion": 20, "handle_opt_out": 10})
