"""``mparticle-dsr cancel --state FILE``: withdraw the request a state file holds, while mParticle still can.

The request and its latest state come from the ``--state`` file an ``access`` or ``delete`` command wrote (signed;
locked while in use). A cancel that mParticle carried out is stored in the file as the request's final result, so
resuming it shows the request cancelled and sends nothing. A refused cancel (mParticle is already processing the
request) leaves the file as it was: the request goes on, and the printed command resumes it.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.config_file import load_connector, setup_logging
from connector_mparticle.cli.exits import EXIT_CODES, EXIT_COMPLETED, EXIT_FAILED, CliError
from connector_mparticle.cli.privacy_requests import config_option, env_option
from connector_mparticle.cli.render import describe_request, print_result
from connector_mparticle.cli.state_file import StateFile
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
    loaded = load_connector(config, env_file, lambda text: notes.print(Text(for_people(text)), soft_wrap=True))
    with ExitStack() as stack:
        file = stack.enter_context(StateFile.locked(state, loaded.state_key, LOCK_WAIT_SECONDS,
                                                    lambda text: notes.print(Text(for_people(text)))))
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
        if result.status == "completed":
            file.write(saved.request, result)  # the request's final result: resuming it sends nothing
    if as_json:
        click.echo(json_for_people(result.to_dict()))
    else:
        print_result(console, result, saved.request, verbose)
        if result.status != "completed":
            console.print(Text(for_people(f"The request was not cancelled; resume it with: mparticle-dsr "
                                          f"{_COMMAND_FOR[saved.request.type]} --config {config} --state {state}")),
                          soft_wrap=True)
    sys.exit(EXIT_COMPLETED if result.status == "completed" else EXIT_FAILED)
