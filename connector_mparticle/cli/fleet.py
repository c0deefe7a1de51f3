"""``batch --fleet`` and ``worker``: a backlog's steps on Celery workers, Redis as broker and shared throttle.

Both sides load the connector from the same ``--config`` (and ``--env-file``), as every other command does;
the broker is the configuration's ``throttle.redis_url`` (a secret: write it as ``${NAME}``), so one Redis
carries the tasks and the one budget every worker spends, and a fleet without a shared budget cannot be
started. A worker refuses steps from a coordinator whose configuration differs from its own (another
workspace, other credentials). How it works: :mod:`dsr_framework.batch.fleet`; how to run it: docs/batch.md.

``celery -A connector_mparticle.cli.fleet worker`` works too: the app is built from ``MPARTICLE_DSR_CONFIG``
and ``MPARTICLE_DSR_ENV_FILE`` when Celery asks for it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connector_mparticle.cli.config_file import LoadedConnector, load_connector, setup_logging
from connector_mparticle.cli.exits import EXIT_CODES, CliError
from connector_mparticle.cli.request_options import config_option, env_option
from connector_mparticle.settings import Settings
from dsr_framework.batch.progress import CallRate

if TYPE_CHECKING:
    from celery import Celery

    from dsr_framework.batch.backlog import Backlog
    from dsr_framework.batch.fleet import FleetExecutor, WorkerContext

__all__ = ["FleetSetup", "fleet_setup", "worker_command"]

DEFAULT_CALL_SECONDS = 30.0


@dataclass
class FleetSetup:
    """What the coordinator needs to dispatch to the fleet (checked before anything is sent)."""

    loaded: LoadedConnector
    broker_url: str = field(repr=False)
    redis: Any = field(repr=False)
    rate: CallRate = field(default_factory=CallRate)

    def executor(self, backlog: Backlog, in_flight: int) -> FleetExecutor:
        from dsr_framework.batch.fleet import FleetExecutor, make_app

        handle = self.loaded.handle
        app = make_app(self.broker_url, _no_worker_here, handle.name)
        call_seconds = handle.manifest.call_seconds or DEFAULT_CALL_SECONDS
        batch = backlog.store.meta("batch_id") or ""
        return FleetExecutor(app, self.redis, batch, handle, in_flight, self.rate,
                             redispatch_seconds=2 * call_seconds + 30)


def _no_worker_here() -> WorkerContext:
    raise RuntimeError("the coordinator runs no steps itself")


def _prerequisites(settings: Settings) -> str:
    """The broker URL, once the fleet's prerequisites hold; :class:`CliError` naming the first that does not."""
    if settings.throttle.backend != "redis" or not settings.throttle.redis_url:
        raise CliError("the fleet needs one shared budget: set throttle.backend: redis and throttle.redis_url in "
                       "the config (the same Redis is the fleet's broker)", kind="configuration")
    try:
        import celery  # noqa: F401
    except ImportError:
        raise CliError("the fleet needs Celery: pip install 'connector-mparticle[celery]'",
                       kind="configuration") from None
    return settings.throttle.redis_url


def fleet_setup(loaded: LoadedConnector, settings: Settings) -> FleetSetup:
    """Check that the fleet can be used (shared budget, Celery, Redis answering) before anything is sent."""
    broker_url = _prerequisites(settings)
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=5, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CliError(f"cannot reach the Redis of throttle.redis_url ({type(exc).__name__}); nothing was sent",
                       kind="broker") from None
    return FleetSetup(loaded, broker_url, client)


# --- the worker -----------------------------------------------------------------------------------------------


def _loader(config: Path, env_file: Path | None) -> Any:
    """Builds a worker process's context: the connector as every command loads it, and its throttle's meter."""

    def load() -> WorkerContext:
        from connector_mparticle.plugin import call_meter
        from dsr_framework.batch.fleet import WorkerContext

        loaded = load_connector(config, env_file, lambda text: None)  # warnings were shown once at start-up
        return WorkerContext(loaded.handle, call_meter(loaded.config))

    return load


def build_app(config: Path, env_file: Path | None) -> Celery:
    """The fleet's Celery app for the connector configured in ``config``."""
    from dsr_framework.batch.fleet import make_app

    loaded = load_connector(config, env_file, lambda text: click.echo(f"warning: {text}", err=True))
    broker_url = _prerequisites(loaded.settings)
    return make_app(broker_url, _loader(config, env_file), loaded.handle.name)


def __getattr__(name: str) -> Any:
    """``celery -A connector_mparticle.cli.fleet``: the app, from ``MPARTICLE_DSR_CONFIG`` (and ``_ENV_FILE``)."""
    if name != "app":
        raise AttributeError(name)
    config = os.environ.get("MPARTICLE_DSR_CONFIG")
    if not config:
        raise RuntimeError("set MPARTICLE_DSR_CONFIG (and MPARTICLE_DSR_ENV_FILE) to the worker's config")
    env_file = os.environ.get("MPARTICLE_DSR_ENV_FILE")
    return build_app(Path(config), Path(env_file) if env_file else None)


@click.command("worker", epilog=EXIT_CODES)
@config_option
@env_option
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Worker processes on this machine (each drives one request at a time).")
@click.option("--pool", type=click.Choice(["prefork", "solo"]), default="prefork", show_default=True,
              help="Celery's pool: prefork (processes) or solo (this process alone).")
@click.option("--name", "node", default="mparticle@%h", show_default=True, help="This worker's Celery node name.")
@click.option("--verbose", "-v", is_flag=True, help="Log every task.")
def worker_command(config: Path, env_file: Path | None, concurrency: int, pool: str, node: str,
                   verbose: bool) -> None:
    """Run a fleet worker: Celery, driving backlog steps that `mparticle-dsr batch --fleet` dispatches.

    It uses the same config as the batch command (throttle.backend: redis; throttle.redis_url is the broker),
    and runs until Ctrl-C or SIGTERM (Celery's warm shutdown: the steps in flight finish first).
    """
    from dsr_framework.batch.fleet import queue_for

    setup_logging(verbose)
    app = build_app(config, env_file)
    name = load_connector(config, env_file, lambda text: None).handle.name
    argv = ["worker", "--concurrency", str(concurrency), "--pool", pool, "--queues", queue_for(name),
            "--hostname", node, "--loglevel", "INFO" if verbose else "WARNING", "--without-gossip", "--without-mingle"]
    app.worker_main(argv)
    sys.exit(0)
