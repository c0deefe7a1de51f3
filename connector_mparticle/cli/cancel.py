"""``mparticle-dsr cancel --state FILE``: withdraw the request a state file holds, while mParticle still can.

The request and its latest state come from the ``--state`` file an ``access`` or ``delete`` command wrote (signed;
locked while in use). A cancel that mParticle carried out is stored in the file as the request's final result, so
resuming it shows the request cancelled and sends nothing. A partly cancelled request (one part of a split erasure
cancelled, the other not) keeps the file, and the words say which part was cancelled. A refused cancel
(mParticle is already processing the request) leaves the file as it was: the request goes on, and the printed
command resumes it. The exit code follows the result (0 completed, 1 failed, 3 pending).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.config_file import load_connector, setup_logging
from connector_mparticle.cli.exits import EXIT_CODES, EXIT_FOR_STATUS, CliError
from connector_mparticle.cli.render import describe_request, note_to, print_result
from connector_mparticle.cli.request_options import config_option, env_option
from connector_mparticle.cli.state_file import StateFile
from dsr_framework.models import Result
from dsr_framework.text import for_people, json_for_people

__all__ = ["cancel_command"]

LOCK_WAIT_SECONDS = 10.0
#: The command that resumes each kind of request a state file may hold.
_COMMAND_FOR = {"access": "access", "portability": "portability", "deletion": "delete", "opt_out": "opt-out"}


@click.command("cancel", epilog=EXIT_CODES)
@config_option
@env_option
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The state file of the access or delete command whose request to cancel.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show the audit trail and log messages.")
def cancel_command(config: Path, env_file: Path | None, state: Path, as_json: bool, verbose: bool) -> None:
    """Cancel a request while mParticle holds it pending (an erasure's waiting period); refused, with why, after.

    mParticle does not recall erasures already forwarded to partners: a refusal names those that received it.
    """
    setup_logging(verbose)
    notes = Console(stderr=True)
    console = Console(stderr=as_json)
    loaded = load_connector(config, env_file, note_to(notes))
    with ExitStack() as stack:
        file = stack.enter_context(StateFile.locked(state, loaded.state_key, LOCK_WAIT_SECONDS, note_to(notes)))
        saved = file.read()
        if saved is None:
            raise CliError(f"{state} holds no request: nothing to cancel", kind="state_file")
        previous = saved.result
        if previous is not None and previous.final:
            raise CliError(f"request {saved.request.request_id} is already {previous.status}: nothing to cancel",
                           kind="already_final")
        console.print(Text(for_people(f"cancelling {describe_request(saved.request)} (state: {state})")),
                      soft_wrap=True, highlight=False)
        result = loaded.handle.cancel(saved.request, dict(previous.state) if previous and previous.state else None)
        if result.status == "completed" or result.state is not None:
            file.write(saved.request, result)  # final: resuming sends nothing; partly cancelled: the state kept
    if as_json:
        click.echo(json_for_people(result.to_dict()))
    else:
        print_result(console, result, saved.request, verbose)
        if result.status != "completed":
            console.print(Text(for_people(_next_step(result, config, state, _COMMAND_FOR[saved.request.type]))),
                          soft_wrap=True)
    sys.exit(EXIT_FOR_STATUS[result.status])


def _next_step(result: Result, config: Path, state: Path, command: str) -> str:
    """What to do after a cancel that did not complete, in words that follow the result: a partly cancelled
    request names what was cancelled and keeps it in the state file."""
    outcome = result.summary.get("cancel") or {}
    if outcome.get("outcome") == "partly_cancelled":
        return (f"The request was partly cancelled: {', '.join(outcome['cancelled'])} cancelled, "
                f"{', '.join(outcome['not_cancelled'])} not. The state file is kept: cancel the rest with "
                f"mparticle-dsr cancel --config {config} --state {state}, or follow it with mparticle-dsr {command} "
                f"--config {config} --state {state}")
    return (f"Nothing was cancelled; resume the request with: mparticle-dsr {command} --config {config} "
            f"--state {state}")
