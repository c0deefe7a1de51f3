"""Sharing the limit: another client spends half of it; the connector must adapt instead of colliding.

    python -m bench.contention [--opt-outs 400] [--limit 50]

The other client (authenticated with an OAuth token, so the sandbox log tells the two apart) sends identity
searches and event batches at a steady 50% of the limit. The connector runs opt-outs at its 0.75 target
share; it should notice mParticle's usage header (and any 429) and slow down, so that under 1% of its
calls are throttled and no opt-out fails.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime

import requests

from bench.common import save, seed_profiles, table
from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from dsr_framework import DsrRequest


def other_client(sb: Sandbox, rate: float, stop: threading.Event) -> None:
    creds = sb.credentials()
    token = requests.post(f"{sb.url}/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "audience": "https://api.mparticle.com"}).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    interval, due, turn = 1.0 / rate, time.perf_counter(), 0
    while not stop.is_set():
        due += interval / 2  # alternate: identity, then events, each at ``rate``
        if turn % 2 == 0:
            session.post(f"{sb.url}/v1/search", timeout=5,
                         json={"environment": "production", "known_identities": {"email": "other@example.com"}})
        else:
            session.post(f"{sb.url}/v2/events", timeout=5, json={"environment": "production", "events": []})
        turn += 1
        time.sleep(max(0.0, due - time.perf_counter()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opt-outs", type=int, default=400)
    parser.add_argument("--limit", type=float, default=50.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 30 opt-outs")
    args = parser.parse_args()
    count = 30 if args.quick else args.opt_outs
    # The other client uses a bearer token so the log tells it apart; mParticle documents Basic only for these
    # APIs, so this workspace is one that also accepts tokens there.
    with Sandbox(oauth_apis=("identity", "events")) as sb:
        sb.set_limits(identity={"limit": args.limit, "window_seconds": 1},
                      events={"limit": args.limit, "window_seconds": 1})
        emails = seed_profiles(sb, count)
        config = sb.connector_config(throttle={"limits": {"identity": args.limit, "events": args.limit}})
        stop = threading.Event()
        rival = threading.Thread(target=other_client, args=(sb, args.limit * 0.5, stop), daemon=True)
        rival.start()
        time.sleep(1.0)  # the other client is already busy when the connector starts
        started, failures = time.perf_counter(), 0
        for i, email in enumerate(emails):
            request = DsrRequest(f"contention-{i}", "opt_out", "ccpa", {"email": email}, datetime.now(UTC))
            failures += plugin.handle_opt_out(config=config, request=request, state=None).status != "completed"
        wall = time.perf_counter() - started
        stop.set()
        rival.join(timeout=5)
        log = [e for e in sb.request_log() if e["api"] in ("identity", "events")]
    ours = [e for e in log if e["client"] != "oauth" and e["status"] != 401]
    theirs = [e for e in log if e["client"] == "oauth"]
    row = {
        "opt_outs": count,
        "connector_calls": len(ours),
        "connector_429": sum(e["status"] == 429 for e in ours),
        "connector_429_share": f"{100 * sum(e['status'] == 429 for e in ours) / max(1, len(ours)):.2f}%",
        "failed_opt_outs": failures,
        "connector_identity_rate": round(sum(e["api"] == "identity" for e in ours) / wall, 1),
        "other_client_calls": len(theirs),
        "other_client_429": sum(e["status"] == 429 for e in theirs),
        "wall_s": round(wall, 1),
    }
    print(table([row]))
    print(f"saved {save('contention', {'limit_per_s': args.limit, 'other_client_share': 0.5, **row})}",
          file=sys.stdout)


if __name__ == "__main__":
    main()
