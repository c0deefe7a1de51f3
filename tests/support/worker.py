"""A worker process for cross-process throttle tests: N identity searches through the connector.

    python -m tests.support.worker CONFIG_JSON COUNT
"""

from __future__ import annotations

import json
import sys

from connector_mparticle.connector import connector_for


def main() -> None:
    config, count = json.loads(sys.argv[1]), int(sys.argv[2])
    conn = connector_for(config)
    for i in range(count):
        conn.identity.search({"email": f"worker-{i}@example.com"})
    print("done", flush=True)


if __name__ == "__main__":
    main()
