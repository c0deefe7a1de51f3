"""``mparticle-dsr``: run the demo, the sandbox, or one privacy request by hand against mParticle.

Exit codes (every command, click's own usage errors included):

====  =====================================================================================
0     completed (``check``: every check passed; ``demo``: every step succeeded)
1     failed (the request, a check or a demo step failed)
2     usage or configuration error: nothing was sent (click's convention)
3     pending or interrupted: not final yet; the printed command resumes it (``action required``: fix it first)
4     completed but unverified: the result's verification says what could not be checked
====  =====================================================================================

Secrets never come from command-line arguments (they show in ``ps``): the config file refers to them as
``${NAME}``, read from the environment or from ``--env-file``. Modules: :mod:`.exits` (the table above and
how errors are printed), :mod:`.config_file` (config and env files), :mod:`.state_file` (``--state``),
:mod:`.privacy_requests` (the request commands and ``check``), :mod:`.cancel` (``cancel --state``),
:mod:`.evidence` (``evidence --state``),
:mod:`.batch` (a backlog from a file),
:mod:`.fleet` (``batch --fleet`` and ``worker``: the backlog on Celery), :mod:`.render` (what is shown),
:mod:`.sandbox_files` (``sandbox --write-config``). Every file a request command writes goes through
:mod:`connector_mparticle.files`; a backlog's store and reports through :mod:`dsr_framework.batch.files`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from connector_mparticle.cli.batch import batch_command
from connector_mparticle.cli.cancel import cancel_command
from connector_mparticle.cli.evidence import evidence_command
from connector_mparticle.cli.exits import (
    EXIT_CODES,
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_PENDING,
    EXIT_USAGE,
    report,
)
from connector_mparticle.cli.fleet import worker_command
from connector_mparticle.cli.privacy_requests import check_command, request_command
from connector_mparticle.cli.sandbox_files import write_sandbox_files
from connector_mparticle.sandbox.command_line import make_sandbox_command

__all__ = ["EXIT_COMPLETED", "EXIT_FAILED", "EXIT_PENDING", "EXIT_USAGE", "main"]


class _Main(click.Group):
    """The command group; every error, click's own included, is printed once and ends with the table's code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as error:
            sys.exit(report(error, as_json="--json" in argv))
        except click.exceptions.Abort:  # Ctrl-C outside a request (which handles its own)
            click.echo("Interrupted.", err=True)
            sys.exit(EXIT_PENDING)
        except Exception as error:  # noqa: BLE001 - a defect must not show a traceback that may quote a secret
            click.echo(f"Error: mparticle-dsr failed unexpectedly ({type(error).__name__}); nothing more is "
                       "shown because the details could hold personal data or a secret. Please report it.",
                       err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_COMPLETED)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(package_name="connector-mparticle")
def main() -> None:
    """Privacy requests (access, deletion, opt-out) in mParticle: one by hand, or a backlog from a file.

    New here? Run `mparticle-dsr demo`, or `mparticle-dsr sandbox --write-config mparticle.yaml` in one
    terminal and `mparticle-dsr check --config mparticle.yaml --env-file mparticle.env` in another.
    """


def _demo() -> click.Command:
    from connector_mparticle.cli.demo import demo_command

    return demo_command


main.add_command(_demo())
main.add_command(make_sandbox_command(write_sandbox_files))
main.add_command(check_command)
main.add_command(request_command("access", "access", "Get a copy of the subject's data (OpenDSR access)."))
main.add_command(request_command("portability", "portability",
                                 "Get the subject's data to take elsewhere (OpenDSR portability): mParticle's archive "
                                 "and the same data as JSON and CSV tables."))
main.add_command(request_command("deletion", "delete", "Erase the subject (OpenDSR erasure), then verify it."))
main.add_command(request_command("opt_out", "opt-out", "Record the subject's opt-out as consent state."))
main.add_command(cancel_command)
main.add_command(evidence_command)
main.add_command(batch_command)
main.add_command(worker_command)
