"""``mparticle-dsr evidence --state FILE``: write the evidence record of the request a state file holds.

The record (:mod:`connector_mparticle.flows.evidence`) holds no personal data: signed receipts, the status
history, partner statuses, the verification, digests of the files and timings. It is written beside the state
file (or in ``--out``), 0600 in a folder that is the user's alone, through :mod:`connector_mparticle.files`.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from connector_mparticle.cli.config_file import load_connector, setup_logging
from connector_mparticle.cli.exits import EXIT_CODES, EXIT_COMPLETED, CliError
from connector_mparticle.cli.render import note_to
from connector_mparticle.cli.request_options import config_option, env_option
from connector_mparticle.cli.state_file import StateFile
from connector_mparticle.errors import MParticleError
from connector_mparticle.files import folder_path
from connector_mparticle.flows.evidence import write_evidence
from dsr_framework.redact import Redactor
from dsr_framework.text import for_people, json_for_people

__all__ = ["evidence_command"]

LOCK_WAIT_SECONDS = 10.0


@click.command("evidence", epilog=EXIT_CODES)
@config_option
@env_option
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The state file of the request (from access, portability, delete, opt-out or cancel).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the record (default: the state file's).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show log messages.")
def evidence_command(config: Path, env_file: Path | None, state: Path, out: Path | None, as_json: bool,
                     verbose: bool) -> None:
    """Write one record of how a request was carried out, with no personal data in it (for a regulator)."""
    setup_logging(verbose)
    notes = Console(stderr=True)
    loaded = load_connector(config, env_file, note_to(notes))
    with ExitStack() as stack:
        file = stack.enter_context(StateFile.locked(state, loaded.state_key, LOCK_WAIT_SECONDS, note_to(notes)))
        saved = file.read()
    if saved is None or saved.result is None:
        raise CliError(f"{state} holds no result yet: run the request first", kind="state_file")
    where = str(folder_path(out if out is not None else folder_path(state).parent))
    try:
        written = write_evidence(where, saved.request, saved.result, Redactor(loaded.settings.secrets()))
    except MParticleError as exc:
        raise CliError(f"cannot write the evidence record in {where}: {exc.message}", kind="output_dir") from None
    if as_json:
        click.echo(json_for_people(written.to_dict()))
    else:
        Console().print(Text(for_people(f"wrote {written.path} ({written.size_bytes} bytes, sha256 "
                                        f"{written.sha256}); request {saved.request.request_id} is "
                                        f"{saved.result.status}")), soft_wrap=True)
    sys.exit(EXIT_COMPLETED)
