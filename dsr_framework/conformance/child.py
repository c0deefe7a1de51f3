"""A fresh process for the connector: ``python -m dsr_framework.conformance.child``, driven by the harness.

A host restarts: after a deploy, a crash, on another worker. A request repeated or resumed there finds nothing
the connector kept in memory. The harness (:mod:`~dsr_framework.conformance.fresh`) starts this process, sends
it one JSON line with the connector to load (its module, configuration, and the limits and hosts the harness
uses), then one JSON line per job (a request, and the state to resume from or none); for each job it drives the
request to a final result as a host does, under the same egress guard and file watch as the harness's own
process, and answers with one JSON line: every result, and what the guards saw.

Answers go to the file descriptor that was stdout when the process started; anything the connector prints
goes to stderr (which the harness reads and searches for secrets and personal data).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import IO, Any

__all__ = ["main"]


def _load(setup: Mapping[str, Any]) -> Any:
    """The connector, loaded as a host loads it, with the configuration the harness sent."""
    from dsr_framework.host import load_host

    module = importlib.import_module(setup["plugin"])
    name = setup["name"]
    host = load_host({"connectors": {name: {"enabled": True, "config": setup["config"]}}}, plugins={name: module},
                     use_entry_points=False)
    if host.problems:
        raise RuntimeError("; ".join(p.message for p in host.problems))
    return host.connector(name)


def _job(handle: Any, setup: Mapping[str, Any], job: Mapping[str, Any]) -> dict[str, Any]:
    """Drive one request to a final result; every result, and what the guards saw."""
    from dsr_framework.conformance import threads
    from dsr_framework.conformance.egress import EgressGuard
    from dsr_framework.conformance.filewatch import FileWatch
    from dsr_framework.conformance.watchdog import Overran, call_with_limit
    from dsr_framework.drive import StillPending, drive
    from dsr_framework.models import DsrRequest

    request = DsrRequest.from_dict(job["request"])
    guard = EgressGuard.allowing(setup["hosts"], label="the connector (in a fresh process)")
    watch = FileWatch(list(setup["writable"]), label="the connector (in a fresh process)")
    watch.allow([request.output_dir] if request.output_dir else [])
    answer: dict[str, Any] = {"results": [], "error": None}
    limit = float(setup["call_seconds"])

    def call(state: Mapping[str, Any] | None) -> Any:
        result, _ = call_with_limit(lambda: handle.handle(request, state), limit, "hook call", threads.adopt)
        answer["results"].append(result.to_dict())
        return result

    with guard.active(), watch.active():
        try:
            drive(call, state=job.get("state"), budget=float(setup["budget"]), max_calls=int(setup["max_calls"]),
                  tick=0.05)
        except (StillPending, Overran) as exc:
            answer["error"] = f"{type(exc).__name__}: {exc}"
    answer["violations"] = [*guard.violations, *watch.problems()]
    return answer


def _serve(protocol: IO[str]) -> None:
    from dsr_framework.conformance import audit, threads

    setup = json.loads(sys.stdin.readline())
    sys.path[:0] = [p for p in setup["sys_path"] if p not in sys.path]
    tempfile.gettempdir()  # settle the temporary folder before the watch: the first call probes it with a file
    audit.install()
    threads.install()
    handle = _load(setup)
    for line in sys.stdin:
        try:
            answer = _job(handle, setup, json.loads(line))
        except Exception as exc:  # noqa: BLE001 - reported to the harness, which fails the check with it
            answer = {"results": [], "error": f"{type(exc).__name__}: {exc}", "violations": []}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


def main() -> None:
    """Serve the harness on stdin and the original stdout; the connector's own output goes to stderr."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        _serve(protocol)
    except Exception as exc:  # noqa: BLE001 - the harness reads this as the answer to its first job
        protocol.write(json.dumps({"results": [], "error": f"{type(exc).__name__}: {exc}", "violations": []}) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
