"""How many status calls a request costs until it completes, from a day to three weeks (time scaled).

    python -m bench.polling [--day-seconds 0.25]

One "day" lasts ``--day-seconds`` of real time; the sandbox's durations and the connector's polling bounds
(minimum 300 s, no lower than the schema's 1 ms; maximum 7 days) are scaled the same way. Cases complete
when mParticle expects, or late.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bench.common import save, table
from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from dsr_framework import DsrRequest
from dsr_framework.drive import drive

CASES = [  # (request type, days pending, days in progress, days late)
    ("access", 0.5, 0.5, 0), ("access", 1, 3, 0), ("erasure", 7, 0.5, 0), ("erasure", 7, 7, 0),
    ("erasure", 7, 14, 0), ("access", 0.5, 0.5, 2), ("erasure", 7, 14, 3), ("erasure", 7, 14, 10),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day-seconds", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true", help="a smoke run: two cases, a day = 0.02 s")
    args = parser.parse_args()
    day = 0.02 if args.quick else args.day_seconds
    cases = CASES[:1] + CASES[5:6] if args.quick else CASES
    rows = []
    with Sandbox() as sb:
        config = sb.connector_config(polling={"min_interval_seconds": max(0.001, 300 * day / 86400),
                                              "max_interval_seconds": 7 * day},
                                     verification={"grace_period_seconds": day, "attempts": 2})
        for n, (kind, pending, working, late) in enumerate(cases):
            sb.reset()
            sb.seed_profile({"email": "jane@example.com"})
            sb.set_durations(**{kind: (pending * day, working * day)}, overrun_seconds=late * day)
            hook = plugin.handle_access if kind == "access" else plugin.handle_deletion
            request = DsrRequest(f"poll-{n}", "access" if kind == "access" else "deletion", "gdpr",
                                 {"email": "jane@example.com"}, datetime.now(UTC))
            driven = drive(lambda state: hook(config=config, request=request, state=state))  # noqa: B023 - called within this iteration
            result, calls = driven.result, driven.calls
            status_calls = sum(e["method"] == "GET" and e["path"].startswith("/v3/requests/")
                               for e in sb.request_log(api="dsr"))
            rows.append({"type": kind, "takes_days": pending + working + late, "expected_days": pending + working,
                         "late_days": late, "status_calls": status_calls, "hook_calls": calls,
                         "outcome": result.status if result.status == "completed" else result.message[:60]})
    print(table(rows))
    on_time = max(r["status_calls"] for r in rows if r["late_days"] == 0)
    print(f"most status calls for a request that completed when expected: {on_time} (target <= 3)")
    print(f"saved {save('polling', {'day_seconds': day, 'rows': rows, 'max_on_time_status_calls': on_time})}")


if __name__ == "__main__":
    main()
