"""Exit codes and the errors that end a command: one table for every command, click's usage errors included."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click

__all__ = [
    "EXIT_CODES",
    "EXIT_COMPLETED",
    "EXIT_FAILED",
    "EXIT_FOR_STATUS",
    "EXIT_PENDING",
    "EXIT_USAGE",
    "CliError",
    "StateBusy",
    "report",
]

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_PENDING = 0, 1, 2, 3
EXIT_FOR_STATUS = {"completed": EXIT_COMPLETED, "failed": EXIT_FAILED, "pending": EXIT_PENDING}

#: The one table: ``--help``, the README and the module docstring all show this text.
EXIT_CODES = (
    "Exit codes: 0 completed (every check passed); 1 failed; 2 usage or configuration error, nothing was "
    "sent (click's convention); 3 pending or interrupted, not final yet (run the printed command to resume)."
)


class CliError(click.ClickException):
    """A problem to fix before anything is sent: exit 2, printed once (as JSON with ``--json``)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hints: Sequence[str] = (), kind: str = "usage") -> None:
        super().__init__(message)
        self.hints = list(hints)
        self.kind = kind

    def format_message(self) -> str:
        return "\n".join([self.message, *(f"hint: {hint}" for hint in self.hints)])


class StateBusy(CliError):
    """Another command holds the state file: nothing was done, the request is not final (exit 3)."""

    exit_code = EXIT_PENDING

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="state_busy")


def report(error: click.ClickException, as_json: bool) -> int:
    """Print ``error`` once, as text on stderr or as JSON on stdout; return the exit code for it."""
    code = error.exit_code if isinstance(error, CliError) else EXIT_USAGE
    if as_json:
        message = error.message if isinstance(error, CliError) else error.format_message()
        document = {"error": {"kind": getattr(error, "kind", "usage"), "message": message,
                              "hints": getattr(error, "hints", [])}, "exit_code": code}
        click.echo(json.dumps(document, indent=2))
    elif isinstance(error, CliError):
        click.echo(f"Error: {error.format_message()}", err=True)
    else:
        error.show(sys.stderr)
    return code
