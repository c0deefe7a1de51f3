"""A benchmark worker process: opt-outs for a slice of subjects, through the connector or a naive client.

    python -m bench._worker connector|naive CONFIG_JSON EMAILS_JSON

Prints one JSON line: per-opt-out latencies (seconds), failures, and (naive) 429s seen.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests


def connector_run(config: dict[str, Any], emails: list[str]) -> dict[str, Any]:
    from connector_mparticle import plugin
    from dsr_framework import DsrRequest

    latencies, failures = [], 0
    for email in emails:
        started = time.perf_counter()
        request = DsrRequest(f"bench-{uuid.uuid4().hex[:12]}", "opt_out", "ccpa", {"email": email},
                             datetime.now(UTC))
        result = plugin.handle_opt_out(config=config, request=request, state=None)
        latencies.append(time.perf_counter() - started)
        failures += result.status != "completed"
    return {"latencies": latencies, "failures": failures}


def naive_run(config: dict[str, Any], emails: list[str]) -> dict[str, Any]:
    """What a client without a limiter does: send, and back off exponentially when told 429."""
    auth = (config["inputs"]["auth"]["key"], config["inputs"]["auth"]["secret"])
    base = config["inputs"]["identity_base_url"]
    session = requests.Session()
    latencies, failures, throttled = [], 0, 0

    def post(path: str, body: dict[str, Any]) -> requests.Response:
        nonlocal throttled
        for attempt in range(12):
            response = session.post(base + path, json=body, auth=auth, timeout=10)
            if response.status_code != 429:
                return response
            throttled += 1
            time.sleep(random.uniform(0, min(8.0, 0.1 * 2**attempt)))
        return response

    for email in emails:
        started = time.perf_counter()
        found = post("/v1/search", {"environment": "production", "known_identities": {"email": email}})
        ok = found.status_code in (200, 404)
        if found.status_code == 200:
            batch = {"environment": "production", "mpid": int(found.json()["mpid"]), "events": [],
                     "source_request_id": str(uuid.uuid4()), "consent_state": {"ccpa": {"data_sale_opt_out": {
                         "consented": True, "timestamp_unixtime_ms": int(time.time() * 1000)}}}}
            ok = post("/v2/events", batch).status_code == 202
        latencies.append(time.perf_counter() - started)
        failures += not ok
    return {"latencies": latencies, "failures": failures, "throttled": throttled}


def main() -> None:
    mode, config, emails = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    outcome = connector_run(config, emails) if mode == "connector" else naive_run(config, emails)
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
