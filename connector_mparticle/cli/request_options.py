"""The options of the request commands (``access``, ``portability``, ``delete``, ``opt-out``) and what each accepts.

Values are judged while the command line is parsed, by the request schema's rules (:mod:`.request_rules`,
:mod:`.identifiers`), so a request the host would refuse is never built. Adding an identifier option is one row
of :data:`IDENTITY_OPTIONS`; any other category goes through ``--device-id`` or ``--identity``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from connector_mparticle.cli.identifiers import check_email, check_mpid, check_phone, check_request_id, check_value
from connector_mparticle.cli.request_rules import CATEGORY, KNOWN_CATEGORIES, REGULATIONS
from dsr_framework.text import for_people

__all__ = ["DEVICE_CATEGORIES", "IDENTITY_OPTIONS", "IdentityOption", "config_option", "env_option",
           "identities_from", "request_options"]


@dataclass(frozen=True)
class IdentityOption:
    """One subject-identifier option: the request's identity name, its flag, and how a bad value is described."""

    name: str
    flag: str
    metavar: str
    help: str
    problem: Callable[[str], str | None] = lambda _: None

    @property
    def param(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


#: Adding an identifier option is one row here; any other category goes through --device-id or --identity.
IDENTITY_OPTIONS: tuple[IdentityOption, ...] = (
    IdentityOption("email", "--email", "ADDR", "The subject's email address.", check_email),
    IdentityOption("customer_id", "--customer-id", "ID",
                   "The subject's customer id (mParticle's default login id: without it, mParticle cannot reach a "
                   "known user's profile).", check_value),
    IdentityOption("phone", "--phone", "NUMBER",
                   "The subject's phone number (mParticle mobile_number, unless the config's 'identities' says "
                   "otherwise).", check_phone),
    IdentityOption("vendor_id", "--mpid", "MPID",
                   "The subject's mParticle ID (sent in its own request, as mParticle requires; verified through "
                   "the Profile API when 'profile' is configured).", check_mpid),
)


#: The request categories that name a device (``--device-id TYPE=VALUE``): every category the request schema
#: describes (named as the OpenDSR spec names them) that has no option of its own.
DEVICE_CATEGORIES: tuple[str, ...] = tuple(c for c in KNOWN_CATEGORIES if c not in {o.name for o in IDENTITY_OPTIONS})


def _pairs(flag: str, allowed: tuple[str, ...] | None) -> Callable[[click.Context, click.Parameter, tuple[str, ...]],
                                                                    dict[str, str]]:
    """A click callback reading repeated ``TYPE=VALUE`` options into a dict (TYPE from ``allowed``, if given)."""

    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
        out: dict[str, str] = {}
        for text in values:
            kind, sep, value = text.partition("=")
            if not sep or not CATEGORY.accepts(kind):
                raise click.BadParameter(f"{for_people(text)!r}: expected TYPE=VALUE, like {flag.removeprefix('--')} "
                                         f"{(allowed or ('app_user_id',))[0]}=abc123")
            if allowed is not None and kind not in allowed:
                close = ", ".join(allowed)
                raise click.BadParameter(f"{kind!r} is not a device id type; use one of {close}")
            if (problem := check_value(value)) is not None:
                raise click.BadParameter(f"{kind}: the value {problem}")
            if kind in out and out[kind] != value:
                raise click.BadParameter(f"{kind} is given twice with different values")
            out[kind] = value
        return out

    return parse


config_option = click.option("--config", "config", required=True, envvar="MPARTICLE_DSR_CONFIG",
                             type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             help="Connector settings (YAML or JSON); secrets as ${NAME} references.")
env_option = click.option("--env-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                          help="KEY=VALUE file supplying ${NAME} references (instead of the environment).")


def _checked(option: IdentityOption) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], str | None]:
    """A click callback that refuses a malformed identifier while the command line is parsed, and a flag given
    twice with different values: an OpenDSR request carries one value per identity type, and sending only the
    last one (as a plain click option would) would run the request for someone other than the person named
    first."""

    def check(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> str | None:
        for value in values:
            if (problem := option.problem(value)):
                raise click.BadParameter(problem)
        if len(set(values)) > 1:
            raise click.BadParameter(f"given {len(values)} times with different values; a request is for one "
                                     f"subject and carries one {option.name} (run one request per value)")
        return values[0] if values else None

    return check


def _due_date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """``--due``: an ISO 8601 date (its last second, UTC) or date-time (UTC when it names no zone)."""
    return _date(value, end_of_day=True)


def _asked_date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """``--submitted``: an ISO 8601 date (its first second, UTC: the earlier reading, so the due date it gives is
    never later than the real one) or date-time; not in the future."""
    when = _date(value, end_of_day=False)
    if when is not None and when > datetime.now(UTC) + timedelta(minutes=5):
        raise click.BadParameter("is in the future: give when the subject made the request")
    return when


def _date(value: str | None, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{for_people(value)!r} is not a date like 2026-12-31 or 2026-12-31T17:00:00Z") \
            from None
    if len(value) == 10 and end_of_day:
        parsed = parsed.replace(hour=23, minute=59, second=59)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _check_request_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and (problem := check_request_id(value)) is not None:
        raise click.BadParameter(problem)
    return value


def _check_out(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """The output folder is kept in the request and its state file as text: a name that is not text (bytes that
    are not UTF-8) would be written but could not be read back to resume, so it is refused before anything is
    sent."""
    if value is not None:
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            raise click.BadParameter("the folder's name is not valid UTF-8 text; choose another name") from None
    return value


_OUT_HELP = {
    "access": "Directory for the results zip, the summary and mParticle's signed receipt (default: the current one).",
    "portability": "Directory for the results zip, the JSON and CSV tables, the summary and the receipt (default: the "
                   "current one).",
    "deletion": "Directory for mParticle's signed receipt, mparticle-erasure-…-receipt.json (default: none; the "
                "receipt is always in the result).",
}


def request_options(kind: str) -> list[Callable[[Any], Any]]:
    """The options of a request command, in the order ``--help`` shows them."""
    options = [
        config_option, env_option,
        *(click.option(o.flag, o.param, metavar=o.metavar, help=o.help, callback=_checked(o), multiple=True)
          for o in IDENTITY_OPTIONS),
        click.option("--device-id", "device_id", multiple=True, metavar="TYPE=VALUE",
                     callback=_pairs("--device-id", DEVICE_CATEGORIES),
                     help=f"A device id of the subject (repeatable). TYPE: {', '.join(DEVICE_CATEGORIES)}."),
        click.option("--identity", "identity", multiple=True, metavar="TYPE=VALUE", callback=_pairs("--identity", None),
                     help="Any other identifier (repeatable): an mParticle identity type such as other3, or a "
                          "category the config's 'identities' maps (like app_user_id)."),
        click.option("--request-id", callback=_check_request_id,
                     help="Your id for the request (default: a new one, printed before anything is sent). "
                          "Reusing an id resumes that request; it is never submitted twice."),
        click.option("--regulation", type=click.Choice(REGULATIONS),
                     help="The regulation sent to mParticle, stored and shown (default: the config's "
                          "'regulation', else gdpr)."),
        click.option("--due", callback=_due_date, metavar="DATE",
                     help="When the request must be answered (ISO 8601: 2026-12-31 or 2026-12-31T17:00:00Z; a date "
                          "means its end, UTC). Default: the regulation's (GDPR a month, CCPA 45 days). The result "
                          "says whether mParticle's expected completion puts it at risk."),
        click.option("--submitted", callback=_asked_date, metavar="DATE",
                     help="When the subject made the request (ISO 8601; default: now). The regulation's due date "
                          "counts from it; resuming without --state needs the same value (the printed command "
                          "gives it)."),
        click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
                     help="Store the request and its state here (locked while in use); run again with it to "
                          "resume."),
        click.option("--wait", is_flag=True, help="Keep checking until the result is final (Ctrl-C stops; "
                     "the printed command resumes)."),
        click.option("--json", "as_json", is_flag=True, help="Print the result (or the error) as JSON."),
        click.option("--verbose", "-v", is_flag=True, help="Show the audit trail and log messages."),
    ]
    if kind in _OUT_HELP:
        options.append(click.option("--out", type=click.Path(file_okay=False, path_type=Path), help=_OUT_HELP[kind],
                                    callback=_check_out))
    return options


def identities_from(values: dict[str, Any]) -> dict[str, str]:
    """Take the subject's identifiers out of a command's ``values``: one per option, then the TYPE=VALUE pairs."""
    identities = {option.name: values[option.param] for option in IDENTITY_OPTIONS
                  if values.get(option.param) is not None}
    for option in IDENTITY_OPTIONS:
        values.pop(option.param, None)
    for extra in (values.pop("device_id"), values.pop("identity")):
        for category, value in extra.items():
            if identities.get(category, value) != value:
                raise click.UsageError(f"{category} is given twice with different values")
            identities[category] = value
    return identities
