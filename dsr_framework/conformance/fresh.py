"""The harness's side of a fresh process (:mod:`~dsr_framework.conformance.child`): start it, hand it jobs, read
its answers.

The process starts in the check's working directory with the check's temporary directory and the harness's
import path, so it loads the same connector from the same place; its configuration travels on stdin, never on
the command line or in the environment. Its stderr is kept for the check to search.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from dsr_framework.models import DsrRequest, Result

__all__ = ["Answer", "FreshProcess"]


@dataclass
class Answer:
    """What the fresh process did with one job: every result (the last one final unless ``error``), and what its
    guards saw."""

    results: list[Result]
    error: str | None
    violations: list[str] = field(default_factory=list)

    @property
    def final(self) -> Result | None:
        return self.results[-1] if self.results and self.results[-1].final else None


class FreshProcess:
    """A running :mod:`~dsr_framework.conformance.child`, loaded with the connector."""

    def __init__(self, setup: Mapping[str, Any], cwd: str, tmp: str, timeout: float) -> None:
        env = {**os.environ, "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp,
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._timeout = timeout
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dsr_framework.conformance.child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env, text=True, encoding="utf-8")
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._drain, args=(self._process.stderr,), daemon=True)
        self._reader.start()
        self._send({**setup, "sys_path": sys.path})

    def _drain(self, stream: IO[str] | None) -> None:
        if stream is not None:
            self._stderr.extend(stream)

    def _send(self, message: Mapping[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message, default=str) + "\n")  # a Path in a config, as text
        self._process.stdin.flush()

    def run(self, request: DsrRequest, state: Mapping[str, Any] | None) -> Answer:
        """Drive ``request`` (resumed from ``state``, or from scratch) to a final result in the fresh process."""
        self._send({"request": request.to_dict(), "state": dict(state) if state is not None else None})
        line = self._read_line()
        if not line:
            return Answer([], "the fresh process ended without answering (it crashed, or took longer than the "
                              "request's budget)")
        data = json.loads(line)
        return Answer([Result.from_dict(r) for r in data.get("results", [])], data.get("error"),
                      list(data.get("violations", [])))

    def _read_line(self) -> str:
        assert self._process.stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self._process.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(self._timeout)
        if reader.is_alive():
            self._process.kill()
            return ""
        return found[0] if found else ""

    @property
    def stderr(self) -> str:
        """Everything the process wrote to stderr so far (the connector's output included)."""
        return "".join(self._stderr)

    def __enter__(self) -> FreshProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(1)
