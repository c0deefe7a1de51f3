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

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from connector_mparticle.cli.exits import (
    EXIT_CODES,
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_PENDING,
    EXIT_USAGE,
    report,
)

__all__ = ["EXIT_COMPLETED", "EXIT_FAILED", "EXIT_PENDING", "EXIT_USAGE", "main"]


def _request(kind: str, name: str, summary: str) -> Callable[[], click.Command]:
    def make() -> click.Command:
        from connector_mparticle.cli.privacy_requests import request_command

        return request_command(kind, name, summary)
    return make


def _imported(module: str, name: str) -> Callable[[], click.Command]:
    def make() -> click.Command:
        command: click.Command = getattr(importlib.import_module(module), name)
        return command
    return make


def _sandbox() -> click.Command:
    from connector_mparticle.cli.sandbox_files import write_sandbox_files
    from connector_mparticle.sandbox.command_line import make_sandbox_command

    return make_sandbox_command(write_sandbox_files)


#: Every command, built when it is asked for: a process imports only what its own command needs (a request
#: command does not import the backlog runner, the fleet or the sandbox), which is most of a short run's time.
_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "demo": _imported("connector_mparticle.cli.demo", "demo_command"),
    "sandbox": _sandbox,
    "check": _imported("connector_mparticle.cli.privacy_requests", "check_command"),
    "access": _request("access", "access", "Get a copy of the subject's data (OpenDSR access)."),
    "portability": _request("portability", "portability", "Get the subject's data to take elsewhere (OpenDSR "
                            "portability): mParticle's archive and the same data as JSON and CSV tables."),
    "delete": _request("deletion", "delete", "Erase the subject (OpenDSR erasure), then verify it."),
    "opt-out": _request("opt_out", "opt-out", "Record the subject's opt-out as consent state."),
    "cancel": _imported("connector_mparticle.cli.cancel", "cancel_command"),
    "evidence": _imported("connector_mparticle.cli.evidence", "evidence_command"),
    "batch": _imported("connector_mparticle.cli.batch", "batch_command"),
    "worker": _imported("connector_mparticle.cli.fleet", "worker_command"),
}


class _Main(click.Group):
    """The command group; every error, click's own included, is printed once and ends with the table's code.
    Commands are built on first use (:data:`_COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        make = _COMMANDS.get(cmd_name)
        return make() if make is not None else None

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
