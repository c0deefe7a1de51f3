"""Every benchmark runs from a clean checkout and writes its JSON (tiny --quick runs; the real figures come
from running them in full, see docs/performance.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ["sandbox", "throttle", "contention", "overhead", "download", "hostile_download", "polling", "import"]


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHES)
def test_benchmark_runs_and_writes_its_results(name: str, tmp_path: Path) -> None:
    if name == "throttle" and not (os.environ.get("REDIS_URL") or shutil.which("redis-server")):
        pytest.skip("the throttle benchmark's Redis scenario needs REDIS_URL or redis-server")
    args = ["--seconds", "0.5", "--clients", "2"] if name == "sandbox" else ["--quick"]
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "BENCH_RESULTS_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads((tmp_path / f"{name}.json").read_text())
    assert document["benchmark"] == name and document["machine"]["cpu_count"] >= 1
    assert document["command"].startswith("python") and f"bench.{name}" in document["command"]
    assert document["figures"]
