"""How many requests per second the sandbox serves on this machine (limits raised out of the way).

    python -m bench.sandbox [--seconds 5] [--clients 8]

The requirement: at least 5x the highest limit any test or benchmark drives traffic at (benchmarks use 50/s
for Identity and Events, so at least 250/s; the Profile API's published 15/s needs 75/s; mParticle's own
Events default, 270/s, which no test comes near, would need 1,350/s).
"""

from __future__ import annotations

import argparse
import threading
import time

import requests

from bench.common import percentile, save, table
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.instance_config import SandboxCredentials

CREDS = SandboxCredentials()


def run(route: str, seconds: float, clients: int) -> dict[str, object]:
    with Sandbox() as sb:
        sb.set_limits(identity={"limit": 1e9}, events={"limit": 1e9}, dsr={"limit": 1e9}, profile={"limit": 1e9})
        jane = sb.seed_profile({"email": "jane@example.com"})
        token = requests.post(f"{sb.url}/oauth/token", timeout=10, json={
            "grant_type": "client_credentials", "client_id": CREDS.client_id, "client_secret": CREDS.client_secret,
            "audience": "https://api.mparticle.com"}).json()["access_token"]
        profile_url = (f"{sb.url}/userprofile/v1/{CREDS.org_id}/{CREDS.account_id}/{CREDS.workspace_id}/"
                       f"{jane['mpid']}?fields=user_identities,user_attributes")
        latencies: list[float] = []
        errors = 0
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def worker() -> None:
            nonlocal errors
            local: list[float] = []
            failed = 0
            basic = (CREDS.input_key, CREDS.input_secret)
            with requests.Session() as session:
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    if route == "identity":
                        response = session.post(f"{sb.url}/v1/search", auth=basic, timeout=10, json={
                            "environment": "production", "known_identities": {"email": "jane@example.com"}})
                    elif route == "profile":
                        response = session.get(profile_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
                    else:
                        response = session.post(f"{sb.url}/v2/events", auth=basic, timeout=10, json={
                            "environment": "production", "events": [],
                            "user_identities": {"email": "jane@example.com"}})
                    local.append(time.perf_counter() - started)
                    failed += response.status_code >= 300
            with lock:
                latencies.extend(local)
                errors += failed

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    return {"route": route, "clients": clients, "requests": len(latencies), "errors": errors,
            "req_per_s": round(len(latencies) / elapsed), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p95_ms": round(percentile(latencies, 0.95) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rows = [run(route, args.seconds, args.clients) for route in ("identity", "events", "profile")]
    print(table(rows))
    print(f"saved {save('sandbox', {'rows': rows, 'required_req_per_s': 250})}")


if __name__ == "__main__":
    main()
