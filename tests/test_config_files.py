"""Config files as a person writes them: ``${NAME}`` references, YAML mistakes and env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_framework.config import (
    ConfigFileError,
    HostConfig,
    MissingEnvironment,
    expand_environment,
    read_config_file,
    read_env_file,
)


def test_references_defaults_and_escapes_expand_as_in_a_shell() -> None:
    env = {"SET": "value", "EMPTY": ""}
    document = {"a": "${SET}", "b": "${UNSET:-fallback}", "c": "${EMPTY:-used when empty}",
                "d": "${SET:-not used}", "e": ["$${SET} and $${not a name}"], "f": 3}
    assert expand_environment(document, env) == {
        "a": "value", "b": "fallback", "c": "used when empty", "d": "value",
        "e": ["${SET} and ${not a name}"], "f": 3}


def test_unsupported_reference_forms_are_refused_with_their_path_never_passed_on_as_text() -> None:
    document = {"dsr": {"auth": {"secret": "${SECRET:?required}"}}, "list": ["${A B}"], "tail": "abc${",
                "fine": "${SET}"}
    with pytest.raises(MissingEnvironment) as caught:
        expand_environment(document, {"SET": "x", "SECRET": "hunter22"})
    assert caught.value.unsupported == ["$.dsr.auth.secret", "$.list[0]", "$.tail"]
    assert "hunter22" not in str(caught.value) and "${NAME:-default}" in str(caught.value)


def test_missing_variables_and_bad_references_are_reported_together() -> None:
    with pytest.raises(MissingEnvironment) as caught:
        expand_environment({"x": "${B}", "y": "${A}", "z": "${C:+x}"}, {})
    assert caught.value.names == ["A", "B"] and caught.value.unsupported == ["$.z"]
    assert str(caught.value).startswith("environment variables not set: A, B; unsupported")


def test_a_yaml_mistake_gives_the_file_line_and_column_but_not_the_text(tmp_path: Path) -> None:
    path = tmp_path / "host.yaml"
    path.write_text("connectors:\n  mparticle:\n    config: {secret: hunter22\n  other: 1\n")
    with pytest.raises(ConfigFileError) as caught:
        read_config_file(path)
    assert (caught.value.line, caught.value.column) == (4, 8)
    assert str(caught.value).startswith(f"{path}:4:8: ") and "hunter22" not in str(caught.value)
    with pytest.raises(ConfigFileError, match="4:8"):
        HostConfig.from_file(path)


def test_env_files_are_read_literally_and_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mp.env"
    path.write_text("# secrets\nexport A='x y'\nB=\"quoted\"\nC=with$dollar${NOT_EXPANDED}\n\nD=\n")
    assert read_env_file(path) == {"A": "x y", "B": "quoted", "C": "with$dollar${NOT_EXPANDED}", "D": ""}
    path.write_text("A=1\nthis is not a setting\n")
    with pytest.raises(ConfigFileError, match=r"mp.env:2:1: expected KEY=VALUE"):
        read_env_file(path)


@pytest.mark.parametrize("levels", [2, 5])
def test_a_yaml_alias_bomb_is_refused_at_its_first_alias_before_anything_expands(tmp_path: Path,
                                                                               levels: int) -> None:
    """"Billion laughs": 9 levels of 10 aliases, 571 bytes, were 10^9 strings for the walks that follow the
    parser (1.3 GB, killed after 120 s). Any alias is refused, with its line and column."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    path = tmp_path / "host.yaml"
    path.write_text("connectors:\n  mparticle:\n    config:\n" + "".join(f"      {line}\n" for line in lines))
    with pytest.raises(ConfigFileError, match="alias") as caught:
        HostConfig.from_file(path)
    assert (caught.value.line, caught.value.column) == (5, 16)


def test_anchors_without_aliases_are_ordinary_yaml(tmp_path: Path) -> None:
    path = tmp_path / "host.yaml"
    path.write_text("connectors:\n  mparticle: &m\n    enabled: true\n")
    assert read_config_file(path) == {"connectors": {"mparticle": {"enabled": True}}}
