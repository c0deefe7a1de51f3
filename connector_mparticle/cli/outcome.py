"""How a request command ends: the result shown (or printed as JSON), the command that resumes a request that is
not final, and the exit code that says which (:mod:`.exits`).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.exits import EXIT_PENDING, exit_code_for
from connector_mparticle.cli.invocation import Invocation, resume_command
from connector_mparticle.cli.render import print_copyable, print_result
from dsr_framework import DsrRequest, Result
from dsr_framework.text import for_people, json_for_people

__all__ = ["finish", "interrupted"]


def finish(inv: Invocation, console: Console, request: DsrRequest, result: Result) -> NoReturn:
    """Show ``result`` (with the resume command while it is not final) and exit with its code."""
    if inv.as_json:
        click.echo(json_for_people(result.to_dict()))
    else:
        print_result(console, result, request, inv.verbose)
    if not result.final:
        print_copyable(console, "Resume it with:", resume_command(inv, request))
    sys.exit(exit_code_for(result))


def interrupted(inv: Invocation, console: Console, request: DsrRequest, result: Result | None) -> NoReturn:
    """Ctrl-C or SIGTERM stopped the command: say the request is not finished, how to resume it, and exit 3."""
    what = f" (mParticle says {result.summary.get('mparticle_status')})" if result and result.summary.get(
        "mparticle_status") else ""
    console.print(Text(for_people(f"Stopped: request {request.request_id} is not finished{what}."),
                       style="yellow"), soft_wrap=True)
    print_copyable(console, "Resume the same request (it is never submitted twice) with:",
                   resume_command(inv, request))
    if inv.as_json:
        document = result.to_dict() if result is not None else {"error": {
            "kind": "interrupted", "message": f"stopped: request {request.request_id} is not finished",
            "hints": [resume_command(inv, request)]}, "exit_code": EXIT_PENDING}
        click.echo(json_for_people(document))
    sys.exit(EXIT_PENDING)
