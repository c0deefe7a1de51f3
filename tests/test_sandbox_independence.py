"""The sandbox is the tests' oracle, so it must not share the connector's code (or its mistakes)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from connector_mparticle.sandbox import Sandbox
with Sandbox() as sb:
    sb.seed_profile({"email": "jane@example.com", "customer_id": "c-1"})
    sb.limits()
loaded = sorted(m for m in sys.modules
                if (m.startswith("connector_mparticle.") and not m.startswith("connector_mparticle.sandbox"))
                or m == "dsr_framework" or m.startswith("dsr_framework."))
print(json.dumps(loaded))
"""


def test_running_the_sandbox_loads_no_connector_or_framework_module() -> None:
    """The import-linter contract (pyproject.toml) checks the imports; this checks what really loads."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_import_contract_is_declared_for_the_sandbox() -> None:
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    assert any(c["type"] == "forbidden" and c["source_modules"] == ["connector_mparticle.sandbox"]
               and set(c["forbidden_modules"]) == {"connector_mparticle.*", "dsr_framework"} for c in contracts)
