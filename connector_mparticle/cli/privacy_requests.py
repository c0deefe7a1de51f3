"""``access``, ``portability``, ``delete``, ``opt-out`` and ``check``: one privacy request by hand, as a host would
run it.

The request you see is the request that is sent. The command line, the config and the state file must
agree, or the command refuses before anything leaves (exit 2) and names the difference. Every local check
(options, config, environment, state file, output directory) runs first; the request, with its id, is
printed and stored before the first call to mParticle, so any request can be resumed.

Each job has its module: :mod:`.request_options` (the options and what they accept, by :mod:`.request_rules`,
the request schema's rules), :mod:`.invocation` (the request to run, and the command that resumes it),
:mod:`.running` (the local checks, then the hook calls) and :mod:`.outcome` (the result shown, the exit code).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from connector_mparticle.cli.config_file import load_connector, setup_logging
from connector_mparticle.cli.exits import EXIT_CODES, EXIT_COMPLETED, EXIT_FAILED
from connector_mparticle.cli.invocation import Invocation
from connector_mparticle.cli.render import checks_table
from connector_mparticle.cli.request_options import (
    IDENTITY_OPTIONS,
    IdentityOption,
    config_option,
    env_option,
    identities_from,
    request_options,
)
from connector_mparticle.cli.running import run_request, warn
from dsr_framework.text import json_for_people

__all__ = ["IDENTITY_OPTIONS", "IdentityOption", "check_command", "request_command"]


def request_command(kind: str, name: str, summary: str) -> click.Command:
    """The click command for one request type; identity options come from :data:`IDENTITY_OPTIONS`."""

    def command(**values: Any) -> None:
        identities = identities_from(values)
        run_request(Invocation(command=name, kind=kind, identities=identities, **values))

    for option in reversed(request_options(kind)):
        command = option(command)
    return click.command(name, help=summary, epilog=EXIT_CODES)(command)


@click.command("check", epilog=EXIT_CODES)
@config_option
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show log messages.")
def check_command(config: Path, env_file: Path | None, as_json: bool, verbose: bool) -> None:
    """Test the DSR, Events and Identity credentials (one result per API)."""
    setup_logging(verbose)
    notes = Console(stderr=True)
    loaded = load_connector(config, env_file, lambda text: warn(notes, text))
    result = loaded.handle.test_connection()
    if as_json:
        click.echo(json_for_people(result.to_dict()))
    else:
        Console().print(checks_table(result))
    sys.exit(EXIT_COMPLETED if result.ok else EXIT_FAILED)
