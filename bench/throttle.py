"""Throughput against mParticle's limits: how close to the target share, with how many 429s.

    python -m bench.throttle [--opt-outs 1000] [--limit 50] [--redis-url redis://127.0.0.1:6379/0]

The sandbox runs with scaled-down limits (Identity and Events 50/s, DSR 600/min). Each opt-out is an
identity search and a consent upload. Scenarios: the connector in 1 process (in-memory budget), in 4
processes sharing SQLite, in 4 processes sharing Redis; and a naive client (plain requests, exponential
backoff on 429, no limiter) in 1 and 4 processes. The target share is 0.75 (so 37.5/s of 50/s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import percentile, save, seed_profiles, table
from connector_mparticle.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def start_redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], None
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("Redis is needed: set REDIS_URL or install redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", server


def scenario(sb: Sandbox, name: str, mode: str, workers: int, emails: list[str], limit: float,
             throttle: dict[str, Any]) -> dict[str, Any]:
    sb.reset()
    sb.set_limits(identity={"limit": limit, "window_seconds": 1}, events={"limit": limit, "window_seconds": 1},
                  dsr={"limit": 600, "window_seconds": 60})
    seed_profiles(sb, len(emails))
    config = sb.connector_config(throttle={**throttle, "limits": {"identity": limit, "events": limit}})
    slices = [emails[i::workers] for i in range(workers)]
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "bench._worker", mode, json.dumps(config), json.dumps(part)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for part in slices]
    outcomes = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.perf_counter() - started
    log = [e for e in sb.request_log() if e["api"] in ("identity", "events")]
    identity = sorted(e["at"] for e in log if e["api"] == "identity" and e["status"] != 429)
    span = (identity[-1] - identity[0]) if len(identity) > 1 else wall
    latencies = [lat for o in outcomes for lat in o["latencies"]]
    return {
        "scenario": name,
        "opt_outs": len(emails),
        "identity_rate_per_s": round(len(identity) / span, 1),
        "achieved_over_limit": round(len(identity) / span / limit, 3),
        "http_429": sum(e["status"] == 429 for e in log),
        "failed_opt_outs": sum(o["failures"] for o in outcomes),
        "wall_s": round(wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opt-outs", type=int, default=1000)
    parser.add_argument("--limit", type=float, default=50.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 opt-outs")
    args = parser.parse_args()
    count = 40 if args.quick else args.opt_outs
    redis_url, redis_server = start_redis()
    rows = []
    try:
        with Sandbox() as sb, tempfile.TemporaryDirectory() as scratch:
            emails = [f"user{i}@example.com" for i in range(count)]
            sqlite = {"backend": "sqlite", "sqlite_path": str(Path(scratch) / "budget.sqlite")}
            for name, mode, workers, throttle in [
                ("connector, 1 process (memory)", "connector", 1, {"backend": "memory"}),
                ("connector, 4 processes (SQLite)", "connector", 4, sqlite),
                ("connector, 4 processes (Redis)", "connector", 4, {"backend": "redis", "redis_url": redis_url}),
                ("naive client, 1 process", "naive", 1, {}),
                ("naive client, 4 processes", "naive", 4, {}),
            ]:
                rows.append(scenario(sb, name, mode, workers, emails, args.limit, throttle))
                print(f"  done: {name}", file=sys.stderr)
    finally:
        if redis_server is not None:
            redis_server.terminate()
    print(table(rows))
    print(f"saved {save('throttle', {'limit_per_s': args.limit, 'target_share': 0.75, 'rows': rows})}")


if __name__ == "__main__":
    main()
