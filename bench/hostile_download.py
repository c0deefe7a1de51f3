"""Memory while reading a hostile results file: one line of 150 MB must never be held whole.

    python -m bench.hostile_download [--megabytes 150]

A hostile mParticle (a proxy in its own process, in front of the sandbox process) serves, as the results of
a completed access request, a zip whose only entry is a single JSON Lines line of the given size, stored
uncompressed so nothing but the reader's line cap stops it. The connector's access hook downloads it,
refuses it (the line is longer than the cap) and deletes it. Measured: growth of this process's peak RSS
during that call (target: within 50 MB), the call's duration, and that nothing was left on disk.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from bench.common import SandboxProcess, save, table
from connector_mparticle import plugin
from connector_mparticle.sandbox.admin_client import SandboxAdmin
from dsr_framework import DsrRequest

TARGET_GROWTH_MB = 50


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kilobytes


def one_line_zip(path: Path, megabytes: int) -> None:
    """A stored (uncompressed) zip whose one entry is a single line of ``megabytes`` MB, written in chunks."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive, \
            archive.open("events-1.jsonl", "w", force_zip64=True) as entry:
        entry.write(b'{"events": [{"event_type": "custom_event", "data": {"event_name": "')
        chunk = b"x" * (1 << 20)
        for _ in range(megabytes):
            entry.write(chunk)
        entry.write(b'"}}]}')  # no newline: the whole entry is one line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=150)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 8 MB")
    args = parser.parse_args()
    megabytes = 8 if args.quick else args.megabytes
    with tempfile.TemporaryDirectory() as scratch, SandboxProcess("--duration", "access=0.2,0.2") as sb:
        archive = Path(scratch) / "hostile.zip"
        one_line_zip(archive, megabytes)
        proxy = subprocess.Popen([sys.executable, "-m", "bench._hostile_proxy", sb.url, str(archive)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert proxy.stdout is not None
            hostile = proxy.stdout.readline().strip()
            admin = SandboxAdmin(sb.url)
            admin.seed_profile({"email": "jane@example.com"})
            config = sb.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 5},
                                         timeouts={"total_seconds": 300})
            config["dsr"]["base_url"] = hostile
            out = Path(scratch) / "out"
            request = DsrRequest("bench-hostile-download", "access", "gdpr", {"email": "jane@example.com"},
                                 datetime.now(UTC), str(out))
            first = plugin.handle_access(config=config, request=request, state=None)  # imports warmed up
            admin.force_status(first.summary["subject_request_id"], "completed")
            before, started = peak_rss_mb(), time.perf_counter()
            result = plugin.handle_access(config=config, request=request, state=first.state)
            seconds = time.perf_counter() - started
            after = peak_rss_mb()
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
        left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    # Refused, and the request kept pending (mParticle did its part; the download is tried again later).
    assert result.status == "pending" and "could not be used" in result.message, result.message
    row = {"line_mb": megabytes, "result": result.status, "call_s": round(seconds, 2),
           "peak_rss_before_mb": round(before, 1), "peak_rss_after_mb": round(after, 1),
           "peak_rss_growth_mb": round(after - before, 1), "files_left": len(left)}
    print(table([row]))
    print(f"reason: {result.message}")
    print(f"saved {save('hostile_download', {**row, 'reason': result.message, 'target_growth_mb': TARGET_GROWTH_MB})}")
    if after - before > TARGET_GROWTH_MB or left:
        print(json.dumps({"over_target": True, "files_left": left}))
        sys.exit(1)


if __name__ == "__main__":
    main()
