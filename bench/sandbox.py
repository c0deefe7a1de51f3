"""How many requests per second the sandbox serves on this machine (limits raised out of the way).

    python -m bench.sandbox [--seconds 5] [--clients 8]

The requirement: at least 5x the highest limit any test or benchmark uses (benchmarks use 50/s for
Identity and Events, so at least 250/s; mParticle's own Events default, 270/s, would need 1,350/s).
"""

from __future__ import annotations

import argparse
import threading
import time

import requests

from bench.common import percentile, save, table
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.config import SandboxCredentials

CREDS = SandboxCredentials()


def run(route: str, seconds: float, clients: int) -> dict[str, object]:
    with Sandbox() as sb:
        sb.set_limits(identity={"limit": 1e9}, events={"limit": 1e9}, dsr={"limit": 1e9})
        sb.seed_profile({"email": "jane@example.com"})
        latencies: list[float] = []
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def worker() -> None:
            local: list[float] = []
            with requests.Session() as session:
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    if route == "identity":
                        session.post(f"{sb.url}/v1/search", auth=(CREDS.input_key, CREDS.input_secret), timeout=10,
                                     json={"environment": "production",
                                           "known_identities": {"email": "jane@example.com"}})
                    else:
                        session.post(f"{sb.url}/v2/events", auth=(CREDS.input_key, CREDS.input_secret), timeout=10,
                                     json={"environment": "production", "events": [],
                                           "user_identities": {"email": "jane@example.com"}})
                    local.append(time.perf_counter() - started)
            with lock:
                latencies.extend(local)

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    return {"route": route, "clients": clients, "requests": len(latencies),
            "req_per_s": round(len(latencies) / elapsed), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p95_ms": round(percentile(latencies, 0.95) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    rows = [run(route, args.seconds, args.clients) for route in ("identity", "events")]
    print(table(rows))
    print(f"saved {save('sandbox', {'rows': rows, 'required_req_per_s': 250})}")


if __name__ == "__main__":
    main()
