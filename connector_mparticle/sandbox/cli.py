"""``mparticle-dsr sandbox`` / ``python -m connector_mparticle.sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from typing import Any

import click

from connector_mparticle.sandbox.config import SandboxConfig
from connector_mparticle.sandbox.limits import APIS, Faults, Limit
from connector_mparticle.sandbox.server import Sandbox
from connector_mparticle.sandbox.store import Durations

__all__ = ["sandbox_command"]

_WINDOWS = {"s": 1.0, "second": 1.0, "m": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0, "d": 86400.0,
            "day": 86400.0}


def _limit(text: str) -> tuple[str, Limit]:
    """``identity=50/s`` or ``dsr=600/minute``."""
    api, _, rate = text.partition("=")
    count, _, per = rate.partition("/")
    try:
        return api.strip(), Limit(float(count), _WINDOWS[per.strip() or "s"])
    except (KeyError, ValueError):
        raise click.BadParameter(f"{text!r}: expected API=COUNT/s|m|h|d, e.g. identity=50/s") from None


def _duration(text: str) -> tuple[str, Durations]:
    """``erasure=2,5``: seconds pending, then in progress."""
    kind, _, pair = text.partition("=")
    try:
        pending, in_progress = (float(v) for v in pair.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected TYPE=PENDING,IN_PROGRESS seconds, e.g. erasure=2,5") from None
    if kind not in ("access", "erasure"):
        raise click.BadParameter(f"{text!r}: TYPE is access or erasure")
    return kind, Durations(pending, in_progress)


def _faults(values: tuple[str, ...]) -> dict[str, Faults]:
    """``dsr.error_rate=0.2`` (repeatable)."""
    settings: dict[str, dict[str, Any]] = {}
    for text in values:
        target, _, raw = text.partition("=")
        api, _, name = target.partition(".")
        if api not in APIS or not name or not raw:
            raise click.BadParameter(f"{text!r}: expected API.SETTING=VALUE with API one of {', '.join(APIS)}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        settings.setdefault(api, {})[name] = value
    try:
        return {api: Faults.from_dict(spec) for api, spec in settings.items()}
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("sandbox")
@click.option("--port", default=8080, show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--https", is_flag=True, help="Serve HTTPS with a certificate from the sandbox CA.")
@click.option("--limit", "limits", multiple=True, metavar="API=N/PER",
              help="Rate limit, e.g. identity=50/s, dsr=600/m (default: mParticle's published limits).")
@click.option("--duration", "durations", multiple=True, metavar="TYPE=P,I",
              help="Seconds a request stays pending and in progress, e.g. erasure=2,5.")
@click.option("--overrun", type=float, default=0.0, help="Complete requests this many seconds late.")
@click.option("--results-ttl", type=float, default=7 * 86400.0, show_default=True,
              help="Seconds a results_url stays downloadable.")
@click.option("--token-ttl", type=float, default=28800.0, show_default=True, help="OAuth token lifetime (s).")
@click.option("--fault", "faults", multiple=True, metavar="API.SETTING=VALUE",
              help="Inject a fault, e.g. dsr.error_rate=0.2, events.force_429=5, identity.latency_ms=800.")
@click.option("--seed", type=int, default=None, help="Seed for fault injection (repeatable runs).")
@click.option("--results-padding", type=int, default=0, metavar="BYTES",
              help="Benchmarks: add this many random bytes to each access results zip.")
@click.option("--json", "as_json", is_flag=True, help="Print the base URL and credentials as JSON.")
def sandbox_command(port: int, https: bool, limits: tuple[str, ...], durations: tuple[str, ...], overrun: float,
                    results_ttl: float, token_ttl: float, faults: tuple[str, ...], seed: int | None,
                    results_padding: int, as_json: bool) -> None:
    """Run the local mParticle sandbox in the foreground until Ctrl-C."""
    config = SandboxConfig(port=port, https=https, overrun_seconds=overrun, results_ttl_seconds=results_ttl,
                           token_ttl_seconds=token_ttl, seed=seed, results_padding_bytes=results_padding)
    for kind, duration in map(_duration, durations):
        config.durations[kind] = duration
    if limits:
        from connector_mparticle.sandbox.limits import default_limits

        config.limits = default_limits()
        config.limits.update(dict(map(_limit, limits)))
    fault_settings = _faults(faults)
    stop = threading.Event()
    with Sandbox(config) as sb:
        sb.ctx.fault_settings.update(fault_settings)
        creds = sb.credentials()
        if as_json:
            click.echo(json.dumps({"url": sb.url, "ca_file": sb.ca_file, **creds}))
        else:
            click.echo(f"mParticle sandbox listening on {sb.url}  (admin API: {sb.url}/_sandbox/)")
            click.echo(f"  DSR API (workspace)   key={creds['workspace_key']}  secret={creds['workspace_secret']}")
            click.echo(f"  Events/Identity input key={creds['input_key']}  secret={creds['input_secret']}")
            click.echo(f"  OAuth client          id={creds['client_id']}  secret={creds['client_secret']}"
                       f"  token URL={creds['token_url']}")
            if https:
                click.echo(f"  CA certificate        {sb.ca_file}")
            click.echo("These credentials only open this local sandbox. Press Ctrl-C to stop.")
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
