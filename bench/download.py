"""Memory while downloading a large access result: the download must stream, not buffer.

    python -m bench.download [--megabytes 200]

The sandbox (another process) pads the results zip with incompressible bytes. The connector's access hook
downloads it into an output directory (with SHA-256 and size checks) and summarises it. Measured: growth of
this process's peak RSS during the call, and the throughput.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import SandboxProcess, save, table
from connector_mparticle import plugin
from connector_mparticle.sandbox.admin_client import SandboxAdmin
from dsr_framework import DsrRequest, Result
from dsr_framework.drive import drive


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 MB")
    args = parser.parse_args()
    size = (5 if args.quick else args.megabytes) * 1024 * 1024
    with SandboxProcess("--duration", "access=0.2,0.2", "--results-padding", str(size)) as sb, \
            tempfile.TemporaryDirectory() as out:
        SandboxAdmin(sb.url).seed_profile({"email": "jane@example.com"})
        config = sb.connector_config(polling={"min_interval_seconds": 0.1, "max_interval_seconds": 5})
        request = DsrRequest("bench-download", "access", "gdpr", {"email": "jane@example.com"}, datetime.now(UTC),
                             out)
        first = plugin.handle_access(config=config, request=request, state=None)  # submit; imports warmed up
        before = seconds = 0.0

        def timed(state: Any) -> Result:  # the last call is the one that downloads: measure each
            nonlocal before, seconds
            before, started = peak_rss_mb(), time.perf_counter()
            outcome: Result = plugin.handle_access(config=config, request=request, state=state)
            seconds = time.perf_counter() - started
            return outcome

        result = drive(timed, result=first).result
        assert result.status == "completed", result.message
        archive = Path(result.files[0].path)
        row = {"results_mb": round(archive.stat().st_size / 2**20, 1), "call_s": round(seconds, 2),
               "mb_per_s": round(archive.stat().st_size / 2**20 / seconds, 1),
               "peak_rss_before_mb": round(before, 1), "peak_rss_after_mb": round(peak_rss_mb(), 1),
               "peak_rss_growth_mb": round(peak_rss_mb() - before, 1)}
    print(table([row]))
    print(f"saved {save('download', {**row, 'target_growth_mb': 50})}")


if __name__ == "__main__":
    main()
