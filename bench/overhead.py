"""CPU cost of the connector's HTTP layer per API call, against a bare ``requests.Session`` call.

    python -m bench.overhead [--calls 2000]

Both clients send the same identity search to the same sandbox route (the sandbox runs in another process,
with limits raised so nothing waits). Measured: this process's CPU time (``time.process_time``) per call.
The connector's extra work: throttle bookkeeping (pyrate-limiter), retry/error handling, usage-header
tracking, JSON parsing into typed results.
"""

from __future__ import annotations

import argparse
import time

import requests

from bench.common import SandboxProcess, save, table
from connector_mparticle.connector import MParticleConnector
from connector_mparticle.sandbox.admin_client import SandboxAdmin
from connector_mparticle.settings import parse_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 calls")
    args = parser.parse_args()
    calls = 100 if args.quick else args.calls
    with SandboxProcess("--limit", "identity=1000000/s") as sb:
        SandboxAdmin(sb.url).seed_profile({"email": "jane@example.com"})
        creds = sb.info
        config = sb.connector_config(throttle={"limits": {"identity": 1_000_000}})
        conn = MParticleConnector(parse_settings(config))
        bare = requests.Session()
        bare_no_env = requests.Session()
        bare_no_env.trust_env = False  # as the connector's session: no proxy/netrc lookup per request
        body = {"environment": "production", "known_identities": {"email": "jane@example.com"}}
        auth = (creds["input_key"], creds["input_secret"])

        def run_bare() -> None:
            response = bare.post(f"{sb.url}/v1/search", json=body, auth=auth, timeout=10)
            response.raise_for_status()
            response.json()

        def run_bare_no_env() -> None:
            response = bare_no_env.post(f"{sb.url}/v1/search", json=body, auth=auth, timeout=10)
            response.raise_for_status()
            response.json()

        def run_connector() -> None:
            conn.identity.search({"email": "jane@example.com"})

        rows = []
        for name, fn in (("bare requests.Session", run_bare), ("bare Session, trust_env=False", run_bare_no_env),
                         ("connector IdentityClient.search", run_connector)):
            for _ in range(50):  # warm up connections and caches
                fn()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            rows.append({"client": name, "calls": calls,
                         "cpu_us_per_call": round((time.process_time() - cpu) / calls * 1e6, 1),
                         "wall_ms_per_call": round((time.perf_counter() - wall) / calls * 1000, 3)})
        conn.close()
    ratio = rows[2]["cpu_us_per_call"] / rows[0]["cpu_us_per_call"]
    like_for_like = rows[2]["cpu_us_per_call"] / rows[1]["cpu_us_per_call"]
    print(table(rows))
    print(f"CPU ratio connector / bare Session: {ratio:.2f} (target <= 1.5); "
          f"against a bare Session without environment lookups: {like_for_like:.2f}")
    figures = {"rows": rows, "cpu_ratio": round(ratio, 3), "target": 1.5,
               "cpu_ratio_vs_trust_env_false": round(like_for_like, 3)}
    print(f"saved {save('overhead', figures)}")


if __name__ == "__main__":
    main()
