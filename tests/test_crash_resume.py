"""Killing a worker (SIGKILL) at random points never duplicates or loses a request.

Each request runs as ``mparticle-dsr <command> --state FILE --wait``, is killed at a seeded random moment
(during start-up, submission or polling), killed again after resuming, then resumed to the end from
whatever state survived. The state file is written atomically, so it is always either the previous or the
next state, never a torn one.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector_mparticle.sandbox import Durations, Sandbox

SEED = 7
BIN = Path(sys.executable).with_name("mparticle-dsr")
COMMANDS = {"access": "access", "deletion": "delete", "opt_out": "opt-out"}


def run_with_kills(kind: str, index: int, kills: list[float], config: Path, state: Path, out: Path,
                   env: dict[str, str]) -> tuple[int, int, dict[str, Any]]:
    """Start, kill after each delay in ``kills``, then resume to the end. Returns (kills, exit code, result)."""
    base = [str(BIN), COMMANDS[kind], "--config", str(config), "--state", str(state), "--wait", "--json"]
    fresh = ["--request-id", f"crash-{kind}-{index}", "--email", f"{kind}{index}@example.com"]
    extra = ["--out", str(out)] if kind == "access" else []
    done = 0
    for delay in kills:
        args = base + extra + ([] if state.exists() else fresh)
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(delay)
        if process.poll() is None:
            process.kill()
            done += 1
        process.wait()
        if state.exists():
            json.loads(state.read_text())  # never torn
    final = subprocess.run(base + extra + ([] if state.exists() else fresh), capture_output=True, text=True,
                           timeout=120, env=env)
    return done, final.returncode, json.loads(final.stdout) if final.stdout.strip() else {}


@pytest.mark.slow
def test_sigkill_at_random_points_never_duplicates_or_loses_a_request(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    jobs = [(kind, i) for kind in ("deletion", "access", "opt_out") for i in range(10)]
    plans = {job: [rng.uniform(0.15, 1.6), rng.uniform(0.15, 1.2), rng.uniform(0.15, 0.8)] for job in jobs}
    with Sandbox(durations={"access": Durations(0.4, 0.4), "erasure": Durations(0.4, 0.4)}) as sb:
        mpids = {job: str(sb.seed_profile({"email": f"{job[0]}{job[1]}@example.com"})["mpid"]) for job in jobs}
        creds = sb.credentials()
        config = tmp_path / "mparticle.yaml"
        config.write_text(yaml.safe_dump({
            "dsr": {"auth": {"type": "basic", "key": "${K1}", "secret": "${S1}"}, "base_url": sb.url},
            "inputs": {"auth": {"type": "basic", "key": "${K2}", "secret": "${S2}"},
                       "events_base_url": sb.url, "identity_base_url": sb.url},
            "polling": {"min_interval_seconds": 0.1, "max_interval_seconds": 1}}))
        env = {**os.environ, "K1": creds["workspace_key"], "S1": creds["workspace_secret"],
               "K2": creds["input_key"], "S2": creds["input_secret"]}
        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = dict(zip(jobs, pool.map(lambda job: run_with_kills(
                job[0], job[1], plans[job], config, tmp_path / f"{job[0]}-{job[1]}.json", tmp_path / "out", env),
                jobs), strict=True))
        dsrs = sb.dsrs()
        profiles = {p["mpid"]: p for p in sb.find_profiles()}

    kills = sum(done for done, _, _ in outcomes.values())
    print(f"\ncrash/resume (seed {SEED}): {len(jobs)} requests, {kills} SIGKILLs, {len(dsrs)} OpenDSR requests")
    assert kills >= 50, f"only {kills} kills landed; the test must kill at least 50 times"
    for (kind, i), (_, code, result) in outcomes.items():
        unverified = (result.get("verification") or {}).get("status") == "unverified"  # an email alone: exit 4
        assert code == (4 if unverified else 0) and result.get("status") == "completed", (
            kind, i, code, result.get("message"))
    per_request = {d["group_id"]: 0 for d in dsrs}
    for d in dsrs:
        per_request[d["group_id"]] += 1
    assert per_request == {f"crash-{kind}-{i}": 1 for kind, i in jobs if kind != "opt_out"}
    for (kind, i), mpid in mpids.items():
        if kind == "opt_out":
            assert profiles[mpid]["event_batch_count"] == 1, f"opt-out {i}: consent recorded more than once"
        elif kind == "deletion":
            assert mpid not in profiles
