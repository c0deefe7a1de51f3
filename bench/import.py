"""Start-up cost: importing the framework and the plugin as a host does (fresh interpreter each time).

    python -m bench.import [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench.common import save, table

PROBE = """
import json, time
t0 = time.perf_counter()
import dsr_framework.host
t1 = time.perf_counter()
import connector_mparticle.plugin
t2 = time.perf_counter()
print(json.dumps({"framework_ms": (t1 - t0) * 1000, "plugin_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 runs")
    args = parser.parse_args()
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                                      check=True).stdout) for _ in range(3 if args.quick else args.runs)]
    row = {key: round(statistics.median(r[key] for r in runs), 1) for key in ("framework_ms", "plugin_ms", "total_ms")}
    row["max_total_ms"] = round(max(r["total_ms"] for r in runs), 1)
    print(table([{"runs": len(runs), **row}]))
    print(f"saved {save('import', {'runs': len(runs), **row, 'target_ms': 150})}")


if __name__ == "__main__":
    main()
