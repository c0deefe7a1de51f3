"""Configuration and usage errors never echo a value from the file or the environment.

Generated secrets are written into config files in every place a person might put one by mistake (after a YAML
alias ``*`` or tag ``!``, as an anchor, in a broken quoted string or block scalar, as a bare key in a flow
mapping, as a ``%TAG`` prefix) and into environment variables the file refers to in settings that refuse them;
``mparticle-dsr check`` prints its error (text and ``--json``) without any run of eight characters of the
secret. ``${A:-${B}}`` is refused, not half-expanded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.cli import main
from dsr_framework.config import MissingEnvironment, expand_environment
from dsr_framework.redact import Redactor
from tests.support.secrets import traces

BASE = """dsr:
  auth: {type: basic, key: "${MP_WORKSPACE_KEY}", secret: "${MP_WORKSPACE_SECRET}"}
  base_url: http://127.0.0.1:9
inputs:
  auth: {type: basic, key: "${MP_INPUT_KEY}", secret: "${MP_INPUT_SECRET}"}
  events_base_url: http://127.0.0.1:9
  identity_base_url: http://127.0.0.1:9
"""
ENV = {"MP_WORKSPACE_KEY": "wk-3f9a27c1", "MP_WORKSPACE_SECRET": "ws-Q8vT3nLp6Rz2", "MP_INPUT_KEY": "ik-5b8d1e6f",
       "MP_INPUT_SECRET": "is-H4mW7cJt2Yq9"}
#: Where a secret typed into the file by mistake ends up quoted by a parser or a validator, if nothing stops it.
MISTAKES = [
    "secret: *{s}\n", "secret: !{s} x\n", "secret: &{s}\n", 'secret: "{s}\\q"\n', "secret: '{s}\n",
    "secret: |{s}\n  x\n", "secret: @{s}\n", "secret: `{s}\n", "secret: %{s}\n", "secret: !<tag:{s}> x\n",
    "%TAG !x! tag:{s}:\n---\nsecret: !x!y 1\n", "{s}\n- a\n", "&{s} a: 1\n&{s} b: 2\n",
    "dsr: {{auth: {{type: basic, key: abcd, {s}}}}}\n", "pollling: {{{s}: 1}}\n", "dsr:\n  auth:\n    {s}: 1\n",
    "secret: {s}\n  bad: indent\n", "[{s}\n", "{{{s}: 1, {s}: 2}}\n", "secret: \"\\x{s}\"\n",
]
SECRET = st.from_regex(r"[A-Za-z][A-Za-z0-9]{11,23}", fullmatch=True)
CLI = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_check(tmp_path: Path, text: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``mparticle-dsr check`` on a config holding ``text``, as text and as JSON: what it printed each time."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "mp.yaml"
    path.write_text(text)
    outputs = []
    for extra in ([], ["--json"]):
        done = CliRunner().invoke(main, ["check", "--config", str(path), *extra])
        assert done.exit_code == 2, done.output
        outputs.append(done.stdout + done.stderr)
    return outputs


def assert_quotes_nothing_of(secret: str, outputs: list[str]) -> None:
    for output in outputs:
        assert not Redactor([secret]).leaks(output) and not traces(output, secret), output


@CLI
@given(SECRET, st.sampled_from(MISTAKES))
def test_a_secret_typed_in_the_wrong_place_is_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           secret: str, mistake: str) -> None:
    outputs = run_check(tmp_path, BASE + mistake.format(s=secret), ENV, monkeypatch)
    assert_quotes_nothing_of(secret, outputs)


#: Settings whose schema refuses a generated value: the value must not appear in the reason.
REFUSING = ["pod: ${V}\n", "regulation: ${V}\n", "timeouts: {read: '${V}'}\n", "throttle: {backend: '${V}'}\n",
            "throttle: {target_share: '${V}'}\n", "identities: {'${V}': other}\n", "signatures: ${V}\n",
            "polling: {min_interval_seconds: '${V}'}\n"]


@CLI
@given(SECRET, st.sampled_from(REFUSING))
def test_an_environment_value_a_setting_refuses_is_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                secret: str, setting: str) -> None:
    outputs = run_check(tmp_path, BASE + setting, {**ENV, "V": secret}, monkeypatch)
    assert_quotes_nothing_of(secret, outputs)


def test_a_secret_written_as_the_dsr_secret_is_named_by_its_path_only(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASE.replace('secret: "${MP_WORKSPACE_SECRET}"', "secret: *Zq8vLm3pXr7tWc2n")
    [plain, as_json] = run_check(tmp_path, text, ENV, monkeypatch)
    assert "a YAML alias (*name)" in plain and ":2:" in plain  # where, and what, not the text
    assert "Zq8vLm3pXr7tWc2n" not in plain
    assert json.loads(as_json)["error"]["kind"] == "configuration"


@pytest.mark.parametrize("value", ["${A:-${B}}", "x${A:-${B:-c}}y", "${A:-$${B}}"])
def test_a_nested_reference_is_refused_not_half_expanded(value: str) -> None:
    with pytest.raises(MissingEnvironment) as refused:
        expand_environment({"dsr": {"secret": value}}, {"B": "from-b-1234567"})
    assert refused.value.unsupported == ["$.dsr.secret"]
    assert "cannot be nested" in str(refused.value) and "from-b" not in str(refused.value)


def test_a_nested_reference_in_the_cli_config_is_a_clear_configuration_error(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASE.replace('"${MP_WORKSPACE_SECRET}"', '"${MP_WORKSPACE_SECRET_OLD:-${MP_WORKSPACE_SECRET}}"')
    [plain, _] = run_check(tmp_path, text, ENV, monkeypatch)
    assert "$.dsr.auth.secret" in plain and "cannot be nested" in plain
    assert ENV["MP_WORKSPACE_SECRET"] not in plain


def test_a_default_with_a_closing_brace_after_it_is_plain_text() -> None:
    assert expand_environment({"k": "${A:-x}}"}, {}) == {"k": "x}"}
    assert expand_environment({"k": "${A:-x}"}, {"A": "set-value"}) == {"k": "set-value"}
