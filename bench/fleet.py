"""A backlog on a Celery fleet against mParticle's (scaled-down) limits, one worker killed mid-run; and the
embedded runner alone on the same backlog, side by side.

    python -m bench.fleet [--requests 10000] [--processes 16] [--dsr-per-minute 1800] [--quick] [--no-chart]

The sandbox runs with scaled-down limits (DSR ``--dsr-per-minute``, Identity and Events high enough that the DSR
limit binds) and requests that take a second or two instead of weeks. The backlog is mixed: erasures, access
and opt-outs, some already overdue (nearest due dates go first), a few that fail (no identifier mParticle can
use). Both runs go through ``mparticle-dsr batch`` itself: ``--fleet`` with Redis (broker and shared throttle)
and ``--processes`` Celery worker processes (two nodes), one of them SIGKILLed while it drives a request; then
threads in one process, with the in-memory throttle. Figures, counted at the sandbox:

- share of the target: DSR calls per second while new requests remained, over 75% of the limit (goal >= 0.97);
- 429s (goal 0); OpenDSR requests created per request id (goal exactly 1) and submissions sent per id;
- requests lost (not in the report, or not final; goal 0); wall time against the plan's ETA.

It saves ``bench/results/fleet.json`` and a chart of DSR calls per second against the limit,
``docs/fleet-benchmark.png`` (needs the ``bench`` extra: matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.common import save, table
from connector_mparticle.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).with_name("mparticle-dsr")
CHART = ROOT / "docs" / "fleet-benchmark.png"
SHARE = 0.75
MIX = (("deletion", 0.40), ("access", 0.35), ("opt_out", 0.25))
FAILING_SHARE = 0.01  #: of each of deletion and opt-out: no identifier mParticle can use


def start_redis() -> tuple[str, subprocess.Popen[bytes] | None]:
    """A private redis-server (its queues and keys the benchmark's alone), else REDIS_URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        if not os.environ.get("REDIS_URL"):
            raise SystemExit("Redis is needed: install redis-server or set REDIS_URL")
        return os.environ["REDIS_URL"], None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", server


def backlog(count: int, seed: int = 25) -> list[dict[str, str]]:
    """The mixed backlog: types by MIX, due dates from 5 days overdue to 30 days ahead, a few failing."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        due = now + timedelta(days=rng.uniform(-5, 30))
        row = {"request_id": f"BF-{i:05d}", "type": kind, "regulation": rng.choice(["gdpr", "ccpa"]),
               "due_at": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "email": f"bf{i}@example.com", "customer_id": f"C{i}",
               "push_token": "", "microsoft_advertising_id": ""}
        if kind != "access" and rng.random() < FAILING_SHARE:
            # Fails before any call: mParticle's DSR API has no name for a push token, and no API can look up a
            # Microsoft advertising id.
            row.update(email="", customer_id="", **({"push_token": f"tok-{i}"} if kind == "deletion" else
                                                    {"microsoft_advertising_id": f"MS-{i}"}))
        rows.append(row)
    return rows


def write_backlog(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def prepare_sandbox(sb: Sandbox, rows: list[dict[str, str]], dsr_per_minute: float) -> None:
    sb.set_durations(access=(0.5, 0.5), erasure=(0.5, 0.5))
    sb.set_limits(dsr={"limit": dsr_per_minute, "window_seconds": 60},
                  identity={"limit": 400, "window_seconds": 1}, events={"limit": 400, "window_seconds": 1})
    for row in rows:
        if row["type"] != "access" and row["email"]:
            sb.seed_profile({"email": row["email"], "customer_id": row["customer_id"]})


def write_config(folder: Path, sb: Sandbox, dsr_per_minute: float,
                 redis_url: str | None) -> tuple[Path, dict[str, str]]:
    throttle: dict[str, Any] = {"target_share": SHARE,
                                "limits": {"dsr": dsr_per_minute / 60.0, "identity": 400, "events": 400}}
    creds = sb.config.credentials  # passed as the environment variables a real deployment would use
    env = {**os.environ, "MP_WORKSPACE_KEY": creds.workspace_key, "MP_WORKSPACE_SECRET": creds.workspace_secret,
           "MP_INPUT_KEY": creds.input_key, "MP_INPUT_SECRET": creds.input_secret}
    if redis_url is not None:
        throttle.update(backend="redis", redis_url="${BENCH_REDIS}")
        env["BENCH_REDIS"] = redis_url
    config = {"dsr": {"auth": {"type": "basic", "key": "${MP_WORKSPACE_KEY}", "secret": "${MP_WORKSPACE_SECRET}"},
                      "base_url": sb.url},
              "inputs": {"auth": {"type": "basic", "key": "${MP_INPUT_KEY}", "secret": "${MP_INPUT_SECRET}"},
                         "events_base_url": sb.url, "identity_base_url": sb.url},
              "polling": {"min_interval_seconds": 0.5, "max_interval_seconds": 5}, "throttle": throttle,
              "signature_trust_store": sb.ca_file}  # the sandbox's processor certificate is from its own CA
    path = folder / ("fleet.yaml" if redis_url else "embedded.yaml")
    path.write_text(yaml.safe_dump(config))
    return path, env


def plan_eta(file: Path, config: Path, env: dict[str, str], store: Path) -> dict[str, Any]:
    done = subprocess.run([str(BIN), "batch", str(file), "--config", str(config), "--store", str(store), "--dry-run",
                           "--json"], env=env, capture_output=True, text=True, check=True)
    plan: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{"):])["plan"]
    return plan


def start_workers(config: Path, env: dict[str, str], processes: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    nodes = 2 if processes > 1 else 1
    return [subprocess.Popen([str(BIN), "worker", "--config", str(config), "--concurrency",
                              str(processes // nodes + (i < processes % nodes)), "--name", f"bench{i}@%h"],
                             env=env, stdout=subprocess.DEVNULL, stderr=(logs / f"worker{i}.log").open("wb"))
            for i in range(nodes)]


def kill_a_lease_holder(redis_url: str, masters: set[int]) -> dict[str, Any]:
    """SIGKILL a worker process while it drives a request (it holds that request's lease)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for key in client.scan_iter("dsr-batch:*:lease:*"):
            owner = client.get(key)
            pid = int(owner.decode().rsplit(":", 1)[1]) if owner else 0
            if pid and _parent(pid) in masters:
                os.kill(pid, signal.SIGKILL)
                return {"request_id": key.decode().rsplit(":", 1)[1], "pid": pid, "at": time.time()}
        time.sleep(0.01)
    raise SystemExit("no worker held a lease to kill")


def _parent(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return -1
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def run_batch(command: list[str], env: dict[str, str], log: Path, sb: Sandbox, kill: Any = None) -> dict[str, Any]:
    """Run ``mparticle-dsr batch``; ``kill(sb)`` is called once when 40% of the requests were submitted."""
    started = time.time()
    with log.open("w") as progress:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=progress, text=True)
        killed = None
        if kill is not None:
            target = int(0.4 * kill["submissions"])
            while process.poll() is None and len(sb.dsrs()) < target:
                time.sleep(0.5)
            killed = kill["do"]() if process.poll() is None else None
        out, _ = process.communicate()
    outcome = json.loads(out[out.index('{\n  "outcomes"'):])
    return {"started": started, "wall_s": time.time() - started, "exit_code": process.returncode,
            "outcome": outcome, "killed": killed}


def measure(sb: Sandbox, run: dict[str, Any], rows: list[dict[str, str]], dsr_per_minute: float,
            plan: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run, counted at the sandbox and in the report."""
    log = sb.request_log()
    dsr = [e for e in log if e["api"] == "dsr"]
    posts = [e for e in dsr if e["method"] == "POST"]
    # What the connector's DSR budget pays for: DSR API calls and the results downloads (mParticle does not say
    # whether results_url counts against the DSR limit; the connector counts it, to be safe).
    budgeted = dsr + [e for e in log if e["api"] == "results" and e["path"].startswith("/dsr-results/")]
    admitted = sorted(e["at"] for e in budgeted if e.get("status") != 429)
    report = json.loads(Path(run["outcome"]["report_json"]).read_text())["requests"]
    # Steady state: while requests not started yet remained (the last one to start ends it; what follows is the
    # tail, status checks of requests under way, which no throttle can fill).
    first = admitted[0]
    last_new = max(datetime.fromisoformat(line["started_at"].replace("Z", "+00:00")).timestamp()
                   for line in report if line["started_at"])
    steady = [t for t in admitted if first <= t <= last_new]
    target = dsr_per_minute / 60.0 * SHARE
    figures = {
        "wall_s": round(run["wall_s"], 1), "plan_eta_s": plan["send_seconds"],
        "planned_dsr_calls": plan["calls"].get("dsr"), "dsr_calls": len(budgeted), "dsr_api_calls": len(dsr),
        "steady_window_s": round(last_new - first, 1),
        "dsr_rate_steady_per_s": round(len(steady) / max(last_new - first, 1e-9), 2),
        "share_of_target_steady": round(len(steady) / max(last_new - first, 1e-9) / target, 3),
        "share_of_target_whole_run": round(len(admitted) / max(admitted[-1] - first, 1e-9) / target, 3),
        "dsr_api_only_share_of_target_steady": round(
            sum(1 for e in dsr if first <= e["at"] <= last_new and e.get("status") != 429)
            / max(last_new - first, 1e-9) / target, 3),
        "http_429": sum(1 for e in log if e.get("status") == 429),
        **duplicates(sb, posts, rows), **losses(report, rows),
        "exit_code": run["exit_code"], "killed_worker": run["killed"],
    }
    if run["killed"]:
        run["killed"]["seconds_after_first_call"] = round(run["killed"].pop("at") - first, 1)
    figures["per_second"] = per_second(admitted, first)
    return figures


def duplicates(sb: Sandbox, posts: list[dict[str, Any]], rows: list[dict[str, str]]) -> dict[str, Any]:
    """OpenDSR requests created per request id (goal: exactly 1), and submissions sent per OpenDSR request."""
    created = Counter(d["group_id"] for d in sb.dsrs())
    expected = {r["request_id"] for r in rows if r["type"] != "opt_out" and r["email"]}
    sent = Counter(json.loads(e["body"])["subject_request_id"] for e in posts if e.get("body"))
    profiles = sb.find_profiles()
    consent = Counter(p["event_batch_count"] for p in profiles if p["event_batch_count"])
    return {"created_per_request_id": dict(Counter(created.values())),
            "request_ids_without_exactly_one": len(expected ^ set(created)) + sum(1 for n in created.values()
                                                                                     if n != 1),
            "submissions_per_request_id": dict(Counter(sent.values())),
            "consent_batches_per_profile": dict(consent)}


def losses(report: list[dict[str, Any]], rows: list[dict[str, str]]) -> dict[str, Any]:
    """Requests lost: not in the report, or not final; and the failures, by error class."""
    lines = {line["request_id"]: line for line in report}
    return {"requests": len(rows), "lost": sum(1 for r in rows if r["request_id"] not in lines)
            + sum(1 for line in report if line["outcome"] not in ("completed", "failed")),
            "completed": sum(1 for line in report if line["outcome"] == "completed"),
            "failed_by_class": dict(Counter(line["error_class"] for line in report if line["outcome"] == "failed")),
            "designed_failures": sum(1 for r in rows if not r["email"])}


def per_second(stamps: list[float], start: float) -> list[int]:
    counts = Counter(int(t - start) for t in stamps)
    return [counts.get(s, 0) for s in range(max(counts) + 1)] if counts else []


def fleet_run(folder: Path, rows: list[dict[str, str]], args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    with Sandbox(log_bodies=("dsr",)) as sb:
        prepare_sandbox(sb, rows, args.dsr_per_minute)
        config, env = write_config(folder, sb, args.dsr_per_minute, redis_url)
        file = write_backlog(folder / "backlog.csv", rows)
        plan = plan_eta(file, config, env, folder / "fleet.batch")
        workers = start_workers(config, env, args.processes, folder)
        try:
            masters = {w.pid for w in workers}
            submissions = sum(1 for r in rows if r["type"] != "opt_out" and r["email"])
            run = run_batch([str(BIN), "batch", str(file), "--config", str(config), "--store",
                             str(folder / "fleet.batch"), "--fleet", "--wait", "--workers", str(2 * args.processes),
                             "--json"], env, folder / "fleet-progress.log", sb,
                            kill={"submissions": submissions, "do": lambda: kill_a_lease_holder(redis_url, masters)})
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=120)
        return measure(sb, run, rows, args.dsr_per_minute, plan)


def embedded_run(folder: Path, rows: list[dict[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    with Sandbox(log_bodies=("dsr",)) as sb:
        prepare_sandbox(sb, rows, args.dsr_per_minute)
        config, env = write_config(folder, sb, args.dsr_per_minute, None)
        file = write_backlog(folder / "backlog.csv", rows)
        plan = plan_eta(file, config, env, folder / "embedded.batch")
        run = run_batch([str(BIN), "batch", str(file), "--config", str(config), "--store",
                         str(folder / "embedded.batch"), "--wait", "--workers", str(args.processes), "--json"],
                        env, folder / "embedded-progress.log", sb)
        return measure(sb, run, rows, args.dsr_per_minute, plan)


def chart(results: dict[str, dict[str, Any]], dsr_per_minute: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    limit = dsr_per_minute / 60.0
    figure, axes = plt.subplots(len(results), 1, figsize=(10, 3.2 * len(results)), sharex=True, squeeze=False)
    for axis, (name, figures) in zip(axes[:, 0], results.items(), strict=True):
        series = figures["per_second"]
        axis.plot(range(len(series)), series, linewidth=0.8,
                  label="calls per second on the DSR budget (DSR API and results downloads, at the sandbox)")
        axis.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"limit ({dsr_per_minute:.0f}/min)")
        axis.axhline(limit * SHARE, color="green", linestyle=":", linewidth=1.2, label="target (75% of the limit)")
        killed = figures.get("killed_worker")
        if killed:
            axis.axvline(killed["seconds_after_first_call"], color="black", linewidth=0.8, label="worker killed")
        axis.set_title(f"{name}: {figures['requests']:,} requests, share of target {figures['share_of_target_steady']}"
                       f", {figures['http_429']} HTTP 429")
        axis.set_ylabel("calls/s")
        axis.legend(loc="lower right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds since the first DSR call")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=16, help="Celery worker processes (threads, embedded)")
    parser.add_argument("--dsr-per-minute", type=float, default=1800.0, help="the sandbox's DSR limit")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 requests, 4 processes")
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.processes = 300, 4
    rows = backlog(args.requests)
    redis_url, redis_server = start_redis()
    results: dict[str, dict[str, Any]] = {}
    try:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
            for name, run in (("fleet", lambda f: fleet_run(f, rows, args, redis_url)),
                              ("embedded", lambda f: embedded_run(f, rows, args))):
                folder = Path(scratch) / name
                folder.mkdir()
                results[name] = run(folder)
                print(f"  done: {name}", file=sys.stderr)
    finally:
        if redis_server is not None:
            redis_server.terminate()
    report(results, args)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    keys = ("requests", "wall_s", "plan_eta_s", "dsr_calls", "planned_dsr_calls", "share_of_target_steady",
            "share_of_target_whole_run", "http_429", "request_ids_without_exactly_one", "lost", "completed")
    print(table([{"run": name, **{k: figures[k] for k in keys}} for name, figures in results.items()]))
    if not args.no_chart and not args.quick:
        chart(results, args.dsr_per_minute, CHART)
        print(f"chart: {CHART.relative_to(ROOT)}")
    figures = {"dsr_per_minute": args.dsr_per_minute, "target_share": SHARE, "processes": args.processes,
               "runs": results}
    print(f"saved {save('fleet', figures)}")


if __name__ == "__main__":
    main()
