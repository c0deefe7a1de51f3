"""``mparticle-dsr sandbox`` / ``python -m connector_mparticle.sandbox``: run the sandbox in the foreground.

``--write-config`` is ``mparticle-dsr sandbox``'s alone: the files are connector configuration, written through the
connector's file rules (:func:`make_sandbox_command`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from connector_mparticle.sandbox.faults import APIS, Faults
from connector_mparticle.sandbox.instance_config import SandboxConfig
from connector_mparticle.sandbox.limits import Limit, default_limits
from connector_mparticle.sandbox.records import Durations
from connector_mparticle.sandbox.server import Sandbox
from connector_mparticle.sandbox.shapes import ShapeSettings, default_settings
from dsr_framework.text import json_for_people, lines, say, shown

__all__ = ["WRITTEN_BY", "WriteFiles", "WriteRefused", "env_file_for", "make_sandbox_command", "sandbox_command",
           "sandbox_files"]

#: The first line of files ``--write-config`` writes; only such files are ever overwritten.
WRITTEN_BY = "# Written by `mparticle-dsr sandbox`"
#: Environment variable for each secret, as the README's examples name them.
ENV_NAMES = {("dsr", "key"): "MP_WORKSPACE_KEY", ("dsr", "secret"): "MP_WORKSPACE_SECRET",
             ("inputs", "key"): "MP_INPUT_KEY", ("inputs", "secret"): "MP_INPUT_SECRET",
             ("profile", "client_secret"): "MP_PROFILE_CLIENT_SECRET"}

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


class SandboxUsageError(click.ClickException):
    """A problem with how the sandbox was started; exit 2 like every usage error of ``mparticle-dsr``."""

    exit_code = 2


def _shape_settings(mode: str | None, seed: int | None) -> ShapeSettings:
    """``--shapes`` and ``--shape-seed`` over the environment's defaults."""
    default = default_settings()
    return ShapeSettings(default.variation if mode is None else mode == "vary",
                         default.seed if seed is None else seed)


def sandbox_files(sb: Sandbox) -> tuple[str, str]:
    """A connector config for this sandbox (secrets as ``${NAME}``) and the env file that supplies them.

    Status checks are paced for the sandbox's compressed time: requests finish in seconds, not days.
    """
    config: dict[str, Any] = sb.connector_config()
    env: dict[str, str] = {}
    for (api, field), name in ENV_NAMES.items():
        env[name] = config[api]["auth"][field]
        config[api]["auth"][field] = f"${{{name}}}"
    longest = max(d.pending + d.in_progress for d in sb.config.durations.values())
    config["polling"] = {"min_interval_seconds": 0.5,
                         "max_interval_seconds": max(1.0, min(60.0, longest + sb.config.overrun_seconds))}
    header = f"{WRITTEN_BY} for the sandbox at {sb.url}; valid while it runs.\n"
    config_text = header + yaml.safe_dump(config, sort_keys=False)
    env_text = header + "# The sandbox's test credentials: they open only this local sandbox.\n" + "".join(
        f"{name}={value}\n" for name, value in env.items())
    return config_text, env_text


def env_file_for(config_file: Path) -> Path:
    """``mparticle.yaml`` -> ``mparticle.env``."""
    env = config_file.with_suffix(".env")
    return env if env != config_file else config_file.with_name(config_file.name + ".env")


class WriteRefused(Exception):
    """``--write-config``'s files cannot be written; ``str()`` says why, for the person at the terminal."""


#: Writes the config file and its env file: ``(config path, config text, env path, env text)``; raises
#: :class:`WriteRefused`. It must never write over a file whose first line is not :data:`WRITTEN_BY`.
WriteFiles = Callable[[Path, str, Path, str], None]


def _fail(message: str, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json_for_people({"error": {"kind": "usage", "message": message}, "exit_code": 2}, indent=None))
        sys.exit(2)
    raise SandboxUsageError(shown(message))


def _start(sb: Sandbox, as_json: bool) -> Sandbox:
    """Start ``sb``, turning "port in use" into a message instead of a traceback."""
    try:
        return sb.start()
    except OSError as exc:
        where = f"port {sb.config.port} on {sb.config.host}"
        if exc.errno == errno.EADDRINUSE:
            _fail(f"{where} is already in use (another sandbox?): choose another with --port N, "
                  "or --port 0 for a free one", as_json)
        if exc.errno == errno.EACCES:
            _fail(f"{where} needs privileges: choose a port above 1023, or --port 0 for a free one", as_json)
        _fail(f"cannot listen on {where}: {exc.strerror or exc}", as_json)


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` instead of raising, until the block ends (then the old handlers return).

    The handler sets it from a new thread: a handler runs in the main thread between two bytecodes, possibly
    while that thread, inside ``stop.wait()``, holds the event's own (not re-entrant) lock, and ``stop.set()``
    there waited for ever for that lock (seen as a sandbox that never exited on SIGTERM)."""
    numbers = (signal.SIGINT, signal.SIGTERM)

    def stop_soon(*_: object) -> None:
        threading.Thread(target=stop.set, name="sandbox-stop", daemon=True).start()

    previous = {number: signal.signal(number, stop_soon) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _show_files(config_text: str, env_text: str, write_config: Path | None) -> None:
    """What was written and how to use it; every name goes through the framework's rule for text shown to
    people (:func:`dsr_framework.text.say`), and a suggested command quotes it as a shell would need."""
    if write_config is not None:
        config_name, env_name = str(write_config), str(env_file_for(write_config))
        click.echo(say("\nWrote {} and {} (its secrets). Try, in another terminal:", config_name, env_name))
    else:
        config_name, env_name = "mparticle.yaml", "mparticle.env"
        click.echo(say("\nA config for this sandbox (save as {0}, or start with --write-config {0} to have it "
                       "written):\n", config_name))
        click.echo(lines(*config_text.split("\n")))  # our own YAML: each line escaped all the same
        click.echo(say("and its env file ({}):\n", env_name))
        click.echo(lines(*env_text.split("\n")))
        click.echo("Then, in another terminal:")
    config_arg, env_arg = shlex.quote(config_name), shlex.quote(env_name)
    click.echo(say("  mparticle-dsr check --config {} --env-file {}", config_arg, env_arg))
    click.echo(say("  mparticle-dsr access --config {} --env-file {} --email jane@example.com --wait\n", config_arg,
                   env_arg))


def _show_banner(sb: Sandbox, creds: dict[str, Any], https: bool) -> None:
    """Where the sandbox listens and the credentials that open it."""
    click.echo(say("mParticle sandbox listening on {0}  (admin API: {0}/_sandbox/)", sb.url))
    click.echo(say("  DSR API (workspace)   key={}  secret={}", creds["workspace_key"], creds["workspace_secret"]))
    click.echo(say("  Events/Identity input key={}  secret={}", creds["input_key"], creds["input_secret"]))
    click.echo(say("  OAuth client          id={}  secret={}  token URL={}", creds["client_id"], creds["client_secret"],
                   creds["token_url"]))
    if https:
        click.echo(say("  CA certificate        {}", sb.ca_file))


def _options(write_config: bool) -> list[Callable[[Any], Any]]:
    """The command's options, in the order ``--help`` shows them (``--write-config`` only with a writer)."""
    return [
        click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
                     help="Port on 127.0.0.1 (0 picks a free one)."),
        click.option("--https", is_flag=True, help="Serve HTTPS with a certificate from the sandbox CA."),
        click.option("--limit", "limits", multiple=True, metavar="API=N/PER",
                     help="Rate limit, e.g. identity=50/s, dsr=600/m (default: mParticle's published limits)."),
        click.option("--duration", "durations", multiple=True, metavar="TYPE=P,I",
                     help="Seconds a request stays pending and in progress, e.g. erasure=2,5."),
        click.option("--overrun", type=float, default=0.0, help="Complete requests this many seconds late."),
        click.option("--results-ttl", type=float, default=7 * 86400.0, show_default=True,
                     help="Seconds a results_url stays downloadable."),
        click.option("--token-ttl", type=float, default=28800.0, show_default=True, help="OAuth token lifetime (s)."),
        click.option("--fault", "faults", multiple=True, metavar="API.SETTING=VALUE",
                     help="Inject a fault, e.g. dsr.error_rate=0.2, events.force_429=5, identity.latency_ms=800."),
        click.option("--seed", type=int, default=None, help="Seed for fault injection (repeatable runs)."),
        click.option("--results-padding", type=int, default=0, metavar="BYTES",
                     help="Benchmarks: add this many random bytes to each access results zip."),
        *([click.option("--write-config", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                        help="Write a ready-to-use connector config for this sandbox to FILE, and its env file "
                             "beside it (FILE with the suffix .env); both 0600, never over a file the sandbox did "
                             "not write.")] if write_config else []),
        click.option("--live-profile", is_flag=True, help="Include profile.jsonl in access results (off at "
                     "mParticle unless the workspace opts in)."),
        click.option("--gdpr-purpose", "gdpr_purposes", multiple=True, metavar="NAME",
                     help="A GDPR consent purpose defined in the workspace (consent for others is ignored)."),
        click.option("--oauth-api", "oauth_apis", multiple=True, type=click.Choice(["dsr", "events", "identity"]),
                     help="Also accept OAuth bearer tokens on this API (mParticle documents Basic only for it)."),
        click.option("--shapes", type=click.Choice(["tidy", "vary"]), default=None,
                     help="Answer in one tidy shape, or vary among the shapes mParticle's documents show "
                          "(default: $MPARTICLE_SANDBOX_SHAPES, else tidy)."),
        click.option("--shape-seed", type=int, default=None, help="Seed for shape variation (repeatable runs)."),
        click.option("--json", "as_json", is_flag=True, help="Print the base URL and credentials as JSON."),
    ]


def make_sandbox_command(write_files: WriteFiles | None) -> click.Command:
    """The ``sandbox`` command; with ``write_files``, also ``--write-config FILE``.

    The files are connector configuration, so the connector's command line writes them (``mparticle-dsr
    sandbox`` passes its writer, which follows the connector's file rules); the sandbox imports nothing of the
    connector, so ``python -m connector_mparticle.sandbox`` prints them instead.
    """

    def command(**values: Any) -> None:
        _serve(write_files=write_files, **values)

    for option in reversed(_options(write_files is not None)):
        command = option(command)
    return click.command("sandbox", help="Run the local mParticle sandbox in the foreground until Ctrl-C.")(command)


def _configured(port: int, https: bool, limits: tuple[str, ...], durations: tuple[str, ...], overrun: float,
                results_ttl: float, token_ttl: float, seed: int | None, results_padding: int, live_profile: bool,
                gdpr_purposes: tuple[str, ...], oauth_apis: tuple[str, ...], shapes: str | None,
                shape_seed: int | None) -> SandboxConfig:
    config = SandboxConfig(port=port, https=https, overrun_seconds=overrun, results_ttl_seconds=results_ttl,
                           token_ttl_seconds=token_ttl, seed=seed, results_padding_bytes=results_padding,
                           include_live_profile=live_profile, gdpr_purposes=gdpr_purposes, oauth_apis=oauth_apis,
                           shapes=_shape_settings(shapes, shape_seed))
    for kind, duration in map(_duration, durations):
        config.durations[kind] = duration
    if limits:
        config.limits = default_limits()
        config.limits.update(dict(map(_limit, limits)))
    return config


def _serve(*, faults: tuple[str, ...], as_json: bool, write_files: WriteFiles | None,
           write_config: Path | None = None, **settings: Any) -> None:
    """Run the sandbox until Ctrl-C or SIGTERM, after printing (and with ``write_config``, writing) its config."""
    config = _configured(**settings)
    fault_settings = _faults(faults)
    stop = threading.Event()
    # Ctrl-C and SIGTERM only set the event, installed before the banner: a signal that arrives right after
    # "Press Ctrl-C to stop" is printed still ends the sandbox cleanly (exit 0), never as an interruption.
    with _stopped_by_signals(stop), contextlib.closing(_start(Sandbox(config), as_json)) as sb:
        sb.ctx.faults.update(fault_settings)
        creds = sb.credentials()
        config_text, env_text = sandbox_files(sb)
        written: dict[str, str] = {}
        if write_config is not None and write_files is not None:
            env_path = env_file_for(write_config)
            try:
                write_files(write_config, config_text, env_path, env_text)
            except WriteRefused as exc:
                _fail(str(exc), as_json)
            written = {"config_file": str(write_config), "env_file": str(env_path)}
        if as_json:
            click.echo(json_for_people({"url": sb.url, "ca_file": sb.ca_file, **creds, **written}, indent=None))
        else:
            _show_banner(sb, creds, config.https)
            _show_files(config_text, env_text, write_config)
            click.echo("These credentials only open this local sandbox. Press Ctrl-C to stop.")
        stop.wait()


#: ``python -m connector_mparticle.sandbox`` (no ``--write-config``: see :func:`make_sandbox_command`).
sandbox_command = make_sandbox_command(None)
