"""A throttle store in trouble never ends a pending request, never holds a call past its deadline, and never holds
up another configuration's calls; in-memory budgets are one per credential in the process.

Each test runs a real store (a private redis-server, or a socket that speaks just enough Redis to drip) behind
the connector, through the host's facade, against the sandbox behind the hostile server.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import HostileServer
from tests.support.hosting import request

TOTAL = 3.0
BOUNDED = {"timeouts": {"connect": 2, "read": 2, "total_seconds": TOTAL}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of this test's own (it is killed or stopped here)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no"], stdout=subprocess.DEVNULL)
    give_up = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < give_up, "redis-server did not start"
            time.sleep(0.05)
    yield server, f"redis://127.0.0.1:{port}/0"
    server.kill()
    server.wait(10)


@pytest.fixture
def dripping_redis() -> Iterator[str]:
    """A server that accepts Redis connections and answers every command one byte at a time, never ending the
    line: each read gets a byte before any socket timeout, so only an overall deadline can end the wait."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"+")
                while not stop.wait(0.3):
                    conn.sendall(b"x")
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    listener.close()


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    return call(), time.monotonic() - started


@pytest.mark.parametrize("trouble", ["killed", "stopped"])
def test_a_throttle_store_failing_while_a_request_is_pending_keeps_it_pending_with_its_state(
        trouble: str, redis_server: tuple[subprocess.Popen[bytes], str], sandbox: Sandbox,
        hostile: HostileServer) -> None:
    server, url = redis_server
    handle = handle_for(config_for(hostile, sandbox, **BOUNDED, throttle={"backend": "redis", "redis_url": url}))
    sandbox.seed_profile({"email": "jane@example.com"})
    first = handle.handle(request("deletion"))
    assert first.status == "pending" and first.state
    if trouble == "killed":
        server.kill()
        server.wait(10)
    else:
        server.send_signal(signal.SIGSTOP)
    try:
        result, took = timed(lambda: handle.handle(request("deletion"), first.state))
    finally:
        server.send_signal(signal.SIGCONT)
    assert result.status == "pending", result.message  # not failed/internal: the request is not lost
    assert result.state and result.state["parts"] == first.state["parts"]
    assert "throttle store" in result.message
    assert took < TOTAL + 1.0


def test_a_redis_that_drips_its_answers_cannot_hold_a_call_past_its_deadline(
        dripping_redis: str, sandbox: Sandbox, hostile: HostileServer) -> None:
    handle = handle_for(config_for(hostile, sandbox, **BOUNDED,
                                   throttle={"backend": "redis", "redis_url": dripping_redis}))
    result, took = timed(lambda: handle.handle(request("opt_out")))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "retry_later"
    assert took < TOTAL + 1.0, f"{took:.1f}s for a {TOTAL}s budget"
    assert hostile.requests("") == []  # nothing was sent unthrottled


def test_a_configuration_whose_store_hangs_holds_up_no_other_configuration(
        dripping_redis: str, sandbox: Sandbox, hostile: HostileServer) -> None:
    healthy = handle_for(config_for(hostile, sandbox, **BOUNDED))
    assert healthy.handle(request("opt_out", request_id="warm")).status == "completed"
    stuck = handle_for(config_for(hostile, sandbox, **BOUNDED,
                                  throttle={"backend": "redis", "redis_url": dripping_redis}))
    building = threading.Thread(target=lambda: stuck.handle(request("opt_out", request_id="stuck")), daemon=True)
    building.start()
    time.sleep(0.5)  # the stuck configuration is building its connector (waiting on the store)
    box: dict[str, Any] = {}
    other = threading.Thread(target=lambda: box.update(out=timed(
        lambda: healthy.handle(request("opt_out", request_id="other")))), daemon=True)
    other.start()
    other.join(TOTAL + 5)
    building.join(TOTAL + 5)
    assert "out" in box, "a cached configuration's call waited on another configuration's build"
    result, took = box["out"]
    assert result.status == "completed" and took < 1.5
    assert not building.is_alive()


def test_two_configurations_of_one_credential_share_one_in_memory_budget(sandbox: Sandbox,
                                                                       hostile: HostileServer) -> None:
    """Two configurations that differ only in polling: one budget at 7.5 searches/s for the input key (the
    sandbox enforces mParticle's 10/s); two budgets made 14.8/s and 429s."""
    sandbox.set_limits(identity={"limit": 10, "window_seconds": 1})
    base = {"throttle": {"limits": {"identity": 10}, "max_retry_seconds": 30},
            "timeouts": {"connect": 5, "read": 30, "total_seconds": 30}}
    handles = [handle_for(config_for(hostile, sandbox, **base)),
               handle_for(config_for(hostile, sandbox, **base, polling={"min_interval_seconds": 1,
                                                                        "max_interval_seconds": 2}))]
    stop = time.monotonic() + 4

    def worker(index: int) -> None:
        for n in range(1000):
            if time.monotonic() >= stop:
                return
            handles[index % 2].handle(request("opt_out", request_id=f"w{index}-{n}",
                                              email=f"p{index}-{n}@example.com"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    hostile.clear()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    searches = hostile.requests(r"^/v1/search")
    rate = len(searches) / (time.monotonic() - started)
    assert rate <= 7.5 * 1.25, f"{rate:.1f} searches/s: more than one budget for one input key"
    assert all(entry["status"] != 429 for entry in sandbox.request_log(api="identity"))


def test_a_store_out_of_reach_while_setting_up_keeps_a_pending_request_pending(sandbox: Sandbox,
                                                                               hostile: HostileServer) -> None:
    """After a restart, the first call for a pending request sets up its connection: a Redis out of reach then
    is "try again later" with the state as it was (a failure would end the request once the host stopped
    retrying), and the request carries on once the store is back."""
    healthy = handle_for(config_for(hostile, sandbox, **BOUNDED))
    sandbox.seed_profile({"email": "jane@example.com"})
    first = healthy.handle(request("deletion"))
    assert first.status == "pending" and first.state
    down = handle_for(config_for(hostile, sandbox, **BOUNDED,
                                 throttle={"backend": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    result = down.handle(request("deletion"), first.state)
    assert result.status == "pending" and result.state == first.state and result.next_check_at is not None
    assert "Redis" in result.message and "still pending" in result.message
    assert healthy.handle(request("deletion"), result.state).status in ("pending", "completed")
