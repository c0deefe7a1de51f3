"""What every benchmark records: the machine, the command line, and its figures."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0-1) percentile of ``values`` by nearest rank."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def save(name: str, figures: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` with the machine and command line; return its path."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, "-m", f"bench.{name}", *sys.argv[1:]]),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "figures": figures,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of ``rows`` (same keys in each)."""
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = "  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def results_dir() -> Path:
    """Where results go: ``bench/results`` (``BENCH_RESULTS_DIR`` overrides it, e.g. for smoke tests)."""
    override = os.environ.get("BENCH_RESULTS_DIR")
    return Path(override) if override else RESULTS


class SandboxProcess:
    """``mparticle-dsr sandbox`` in its own process, so the client's CPU and memory figures are its own."""

    def __init__(self, *args: str) -> None:
        import subprocess

        command = [sys.executable, "-m", "connector_mparticle.sandbox", "--port", "0", "--json", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.info: dict[str, Any] = json.loads(self.process.stdout.readline())
        self.url: str = self.info["url"]

    def connector_config(self, **extra: Any) -> dict[str, Any]:
        """Connector settings pointing every API at this sandbox, with its credentials."""
        from connector_mparticle.sandbox.instance_config import SandboxCredentials

        names = ("workspace_key", "workspace_secret", "input_key", "input_secret", "client_id", "client_secret")
        config = SandboxCredentials(**{n: self.info[n] for n in names}).connector_config(self.url)
        config.update(extra)
        return config

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def seed_profiles(admin: Any, count: int, prefix: str = "user") -> list[str]:
    """Seed ``count`` profiles (``{prefix}{i}@example.com``) through the admin API; return their emails."""
    emails = [f"{prefix}{i}@example.com" for i in range(count)]
    for email in emails:
        admin.seed_profile({"email": email})
    return emails
