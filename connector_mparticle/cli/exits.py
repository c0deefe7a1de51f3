"""Exit codes and the errors that end a command: one table for every command, click's usage errors included."""

from __future__ import annotations

import io
from collections.abc import Sequence

import click

from dsr_framework.models import Result
from dsr_framework.text import for_people, json_for_people

__all__ = [
    "EXIT_CODES",
    "EXIT_COMPLETED",
    "EXIT_FAILED",
    "EXIT_FOR_STATUS",
    "EXIT_PENDING",
    "EXIT_UNVERIFIED",
    "EXIT_USAGE",
    "CliError",
    "StateBusy",
    "exit_code_for",
    "report",
]

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_PENDING, EXIT_UNVERIFIED = 0, 1, 2, 3, 4
EXIT_FOR_STATUS = {"completed": EXIT_COMPLETED, "failed": EXIT_FAILED, "pending": EXIT_PENDING}

#: The one table: ``--help``, the README and the module docstring all show this text.
EXIT_CODES = (
    "Exit codes: 0 completed (every check passed); 1 failed; 2 usage or configuration error, nothing was "
    "sent (click's convention); 3 pending or interrupted, not final yet (run the printed command to resume); "
    "4 completed but unverified (the result's verification says what could not be checked: have a person "
    "look)."
)


def exit_code_for(result: Result) -> int:
    """A request's exit code: its status, and 4 for a completion that could not be verified (a script must be
    able to tell "erased and confirmed" from "mParticle says done, nobody could check" without reading prose)."""
    return EXIT_UNVERIFIED if result.unverified else EXIT_FOR_STATUS[result.status]


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


def _lines_for_people(text: str) -> str:
    """``text`` with each of its lines made safe to show (messages build their own lines, such as a list of
    problems; no character inside a line can start another or drive the terminal)."""
    return "\n".join(for_people(line) for line in text.split("\n"))


def report(error: click.ClickException, as_json: bool) -> int:
    """Print ``error`` once, as text on stderr or as JSON on stdout; return the exit code for it."""
    code = error.exit_code if isinstance(error, CliError) else EXIT_USAGE
    if as_json:
        message = error.message if isinstance(error, CliError) else error.format_message()
        document = {"error": {"kind": getattr(error, "kind", "usage"), "message": message,
                              "hints": getattr(error, "hints", [])}, "exit_code": code}
        click.echo(json_for_people(document))
    elif isinstance(error, CliError):
        click.echo(_lines_for_people(f"Error: {error.format_message()}"), err=True)
    else:
        click.echo(_lines_for_people(_usage_text(error)), err=True)
    return code


def _usage_text(error: click.ClickException) -> str:
    """What click's own ``error.show()`` prints: the usage line, the help hint and the error."""
    buffer = io.StringIO()
    error.show(buffer)
    return buffer.getvalue().rstrip("\n")
