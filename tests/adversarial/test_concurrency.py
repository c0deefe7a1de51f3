"""Class 7: concurrent calls for one request are safe.

Threads and processes finishing the same access request at once (a host that retried while the first call
was still running, two workers given the same job) must never share a partial file, corrupt or delete each
other's finished files, or end ``internal``; what each result lists is what is on disk.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.flows.access import KIND
from connector_mparticle.flows.delivery import record_name
from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer
from tests.support.hosting import file_stem, request

ROOT = Path(__file__).resolve().parents[2]


def completed_access(sandbox: Sandbox, hostile: HostileServer, folder: Path) -> tuple[Any, dict[str, Any], Any]:
    """A sandbox whose results file is a few megabytes, and an access request mParticle has completed."""
    sandbox.seed_profile({"email": "jane@example.com"}, attributes={"plan": "pro"},
                         batches=[{"environment": "production", "events": [{"event_type": "screen_view",
                                                                            "data": {"screen_name": "Home"}}]}])
    sandbox.ctx.store.padding_bytes = 3 * 1024 * 1024
    config = config_for(hostile, sandbox, timeouts={"total_seconds": 30})
    handle = handle_for(config)
    req = request("access", output_dir=str(folder))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    return handle, config, (req, first.state)


def assert_disk_matches(results: list[Any], folder: Path) -> None:
    assert not [r for r in results if r.status == "failed"], [r.message for r in results if r.status == "failed"]
    done = [r for r in results if r.status == "completed"]
    assert done, "no call completed"
    for result in done:
        for file in result.files:
            data = Path(file.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == file.sha256 and len(data) == file.size_bytes
    names = sorted(p.name for p in folder.iterdir())
    listed = sorted(Path(f.path).name for f in done[0].files)
    record = record_name(file_stem(KIND, request("access")))  # Jane's signed list of what was delivered
    assert names == sorted([*listed, record]), "temporary, partial or lock files were left"


def test_threads_finishing_the_same_access_request_never_collide(sandbox: Sandbox, hostile: HostileServer,
                                                                 tmp_path: Path) -> None:
    handle, _, (req, state) = completed_access(sandbox, hostile, tmp_path)
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def finish() -> None:
        barrier.wait()
        results.append(handle.handle(req, state))

    threads = [threading.Thread(target=finish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 8
    assert not [r for r in results if r.error and r.error.error_class == "internal"]
    assert_disk_matches(results, tmp_path)


WORKER = """
import json, sys
from datetime import datetime
from dsr_framework import DsrRequest
from dsr_framework.host import load_host
config, request, state = json.load(open(sys.argv[1]))
host = load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}})
result = host.connector("mparticle").handle(DsrRequest.from_dict(request), state)
print(json.dumps(result.to_dict()))
"""


@pytest.mark.slow  # four processes racing on one request: ~10 s
def test_processes_finishing_the_same_access_request_never_collide(sandbox: Sandbox, hostile: HostileServer,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    _, config, (req, state) = completed_access(sandbox, hostile, out)
    job = tmp_path / "job.json"
    job.write_text(json.dumps([config, req.to_dict(), state]))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(job)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err[-500:] for _, err in outputs]
    from dsr_framework import Result

    results = [Result.from_dict(json.loads(stdout)) for stdout, _ in outputs]
    assert not [r for r in results if r.error and r.error.error_class == "internal"]
    assert_disk_matches(results, out)


def test_a_repeated_call_returns_the_delivered_files_and_a_refused_download_never_removes_files(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path) -> None:
    handle, _, (req, state) = completed_access(sandbox, hostile, tmp_path)
    good = handle.handle(req, state)
    assert good.status == "completed"
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    downloads = len(hostile.requests(r"^/dsr-results/"))
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(200, {"Content-Type": "application/zip"},
                                                                        b"PK\x03\x04 broken"))
    again = handle.handle(req, state)  # as after a lost response: the delivered files, not a new download
    assert again.status == "completed" and [f.sha256 for f in again.files] == [f.sha256 for f in good.files]
    assert len(hostile.requests(r"^/dsr-results/")) == downloads
    summary = next(p for p in tmp_path.iterdir() if p.name.endswith("summary.json"))
    data = json.loads(summary.read_text())
    data["mparticle"]["requests"][0]["subject_request_id"] = "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00"  # another's
    summary.write_text(json.dumps(data))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    refused = handle.handle(req, state)  # the broken archive is refused: pending again, nothing removed
    assert refused.status == "pending" and "results archive" in refused.message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_two_requests_sharing_an_output_directory_both_complete(sandbox: Sandbox, hostile: HostileServer,
                                                                tmp_path: Path) -> None:
    handle, _, (req, state) = completed_access(sandbox, hostile, tmp_path)
    other = request("access", request_id="host-req-2", email="jane@example.com", output_dir=str(tmp_path))
    other_first = handle.handle(other)
    sandbox.force_status(other_first.summary["subject_request_id"], "completed")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda r=r, s=s: results.append(handle.handle(r, s)))
               for r, s in ((req, state), (other, other_first.state))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [r.status for r in results] == ["completed", "completed"]
    assert len({f.path for r in results for f in r.files}) == 8 and len(list(tmp_path.iterdir())) == 8 + 2  # records
