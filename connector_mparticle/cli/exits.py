"""Exit codes and the errors that end a command: one table for every command, click's usage errors included."""

from __future__ import annotations

import io
from collections.abc import Sequence

import click

from dsr_framework.models import Result
from dsr_framework.text import Shown, for_people, json_for_people, lines, say, shown

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
    """A problem to fix before anything is sent: exit 2, printed once (as JSON with ``--json``).

    The message and each hint go through :func:`dsr_framework.text.shown`: one built with
    :func:`~dsr_framework.text.say` keeps its template's lines, any other is escaped whole, so a newline in a
    path, a key or a value shows as ``\\n`` and can never forge a line of its own."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hints: Sequence[str] = (), kind: str = "usage") -> None:
        super().__init__(shown(message))  # click keeps it as ``self.message``
        self.hints = [shown(hint) for hint in hints]
        self.kind = kind

    def format_message(self) -> Shown:
        return lines(shown(self.message), *(Shown(f"hint: {hint}") for hint in self.hints))


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
        click.echo(json_for_people(document))
    elif isinstance(error, CliError):
        click.echo(Shown("Error: ") + error.format_message(), err=True)
    else:
        click.echo(_usage_text(error), err=True)
    return code


def _usage_text(error: click.ClickException) -> str:
    """What click's own ``error.show()`` prints: the usage line and the help hint (click's template, each line
    escaped), then the error, its values escaped before it is put on its line (an unknown option typed with a
    newline in it stays on that line)."""
    buffer = io.StringIO()
    error.show(buffer)
    full = buffer.getvalue().rstrip("\n")
    message = error.format_message()
    head = full.removesuffix(f"Error: {message}")
    if head == full:  # not click's usual shape: show it all on one line
        return shown(full)
    return "\n".join([*(for_people(line) for line in head.removesuffix("\n").split("\n")),
                      say("Error: {}", message)])
