"""The command line's identifiers: refused when mParticle would match them as something else (a control or
invisible character, surrounding whitespace; matched whole, so a final newline cannot slip past a ``$``), and
sent unchanged with a warning where mParticle's exact matching will likely miss."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector_mparticle.cli import main
from connector_mparticle.cli.identifiers import matching_warnings
from connector_mparticle.sandbox import Sandbox
from tests.test_cli import env, write_config

__all__ = ["env"]


def run(*args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(main, list(args))
    return done.exit_code, done.stdout, done.stderr


@pytest.mark.parametrize(("flag", "value"), [
    ("--email", "jane@example.com\n"), ("--email", "jane@example.com\u202e"), ("--email", " jane@example.com"),
    ("--phone", "+1 800 555 1111\n"), ("--customer-id", "C-42\x1b[2J"), ("--request-id", "T-1\n"),
])
def test_a_value_mparticle_would_not_match_is_refused_before_anything_is_sent(
        sandbox: Sandbox, tmp_path: Path, env: dict[str, str], flag: str, value: str) -> None:
    config = write_config(tmp_path / "mp.yaml", sandbox.url)
    subject = [] if flag != "--request-id" else ["--email", "jane@example.com"]
    code, out, err = run("delete", "--config", str(config), flag, value, *subject)
    assert code == 2, out + err
    assert sandbox.dsrs() == []
    assert "\x1b" not in out + err and "\u202e" not in out + err


def test_an_upper_case_email_and_a_spaced_phone_are_sent_unchanged_with_a_warning(
        sandbox: Sandbox, tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path / "mp.yaml", sandbox.url)
    code, out, err = run("delete", "--config", str(config), "--email", "Jane.Doe@Example.com", "--phone",
                         "+1 (800) 555-1111")
    assert code == 3, out + err  # pending: sent
    [dsr] = sandbox.dsrs()
    sent = dsr["identities"]
    assert sent["email"] == "Jane.Doe@Example.com" and sent["mobile_number"] == "+1 (800) 555-1111"
    assert "email address has upper-case letters" in err and "phone has spaces or punctuation" in err
    assert "Jane.Doe" not in err.split("sending")[0]  # the warnings name the identifier, not its value


def test_ordinary_values_draw_no_warning() -> None:
    assert matching_warnings({"email": "jane@example.com", "phone": "+18005551111", "customer_id": "ABC"}) == []
    assert len(matching_warnings({"phone_number_2": "800 555", "mobile_number": "+1-800"})) == 2
