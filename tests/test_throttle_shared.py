"""One budget for a whole fleet: processes sharing SQLite or Redis stay at the target share together."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from tests.support.hosting import request

ROOT = Path(__file__).resolve().parent.parent
LIMIT, WORKERS, EACH = 20, 4, 15  # 60 searches at a 15/s shared budget: about 4 s, not 1 s


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """REDIS_URL (CI starts a server), else a redis-server started here; skipped only if neither exists."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set REDIS_URL or install redis-server (CI does both)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    deadline = time.time() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.time() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    best, start = 0, 0
    for end in range(len(stamps)):
        while stamps[end] - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_workers(sb: Sandbox, throttle: dict[str, object]) -> list[dict[str, object]]:
    config = sb.connector_config(throttle={**throttle, "limits": {"identity": LIMIT}})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.support.worker", json.dumps(config), str(EACH)],
                                stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(WORKERS)]
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0 and "done" in out
    return sb.request_log(api="identity")


@pytest.mark.slow  # four processes held to one budget for several seconds each
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_processes_sharing_a_backend_stay_within_one_budget(
    backend: str, sandbox: Sandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sandbox.set_limits(identity={"limit": LIMIT, "window_seconds": 1})
    store: dict[str, object] = {"sqlite_path": str(tmp_path / "budget.sqlite")} if backend == "sqlite" else {
        "redis_url": request.getfixturevalue("redis_url")}
    log = run_workers(sandbox, {"backend": backend, **store})
    stamps = sorted(float(e["at"]) for e in log)  # type: ignore[arg-type]
    assert len(stamps) == WORKERS * EACH
    assert all(e["status"] != 429 for e in log), "the fleet went over mParticle's limit"
    target = LIMIT * 0.75
    busiest = max_in_window(stamps)
    # One budget at 15/s in 0.25 s windows may put a little more than 15 in some one-second span, but the
    # fleet must never exceed mParticle's limit (4 separate budgets reached 24 with 429s).
    assert busiest <= LIMIT, f"{busiest} searches in one second: over the limit, the budget was not shared"
    spread = stamps[-1] - stamps[0]
    assert spread >= (WORKERS * EACH / target) * 0.75, f"60 searches in {spread:.1f}s: faster than one budget allows"


def test_unreachable_redis_fails_safe_without_sending_anything(sandbox: Sandbox) -> None:
    config = sandbox.connector_config(throttle={"backend": "redis",
                                                "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    result = plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"
    assert "Redis" in result.message and "no requests were sent" in result.message
    assert sandbox.request_log() == []


def test_unusable_sqlite_file_is_a_configuration_error(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("a file where a directory should be")
    config = sandbox.connector_config(throttle={"backend": "sqlite",
                                                "sqlite_path": str(tmp_path / "not-a-directory" / "b.sqlite")})
    result = plugin.handle_opt_out(config=config, request=request("opt_out"), state=None)
    assert result.status == "failed" and result.error is not None and result.error.error_class == "configuration"
    assert sandbox.request_log() == []
