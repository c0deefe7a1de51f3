"""Configuration and env files give orders (``dsr.base_url`` decides where the credentials go), so they are
refused as OpenSSH refuses its own: owned by another user, or changeable by one (mode bits or an access list),
or inside a folder another user can change. Root's files are fine; sticky folders like ``/tmp`` are fine.

Before, ``--config`` and ``--env-file`` were read whoever owned them: another local user who could write the file
could point ``base_url`` at a server of theirs and collect the secret.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.cli import main
from dsr_framework.config import ConfigFileError, read_config_file, read_env_file
from tests.support.filesystem import IS_ROOT, OTHER_UID, UNKNOWN_GID

needs_root = pytest.mark.skipif(not IS_ROOT, reason="plays another local user with chown: needs root")
READERS = {"config": read_config_file, "env": read_env_file}
TEXT = {"config": "pod: eu1\n", "env": "A=1\n"}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(READERS)), mode=st.integers(0o400, 0o777),
       other_owner=st.booleans() if IS_ROOT else st.just(False),
       shared_group=st.booleans() if IS_ROOT else st.just(False))
def test_a_file_that_gives_orders_is_read_only_if_nobody_else_could_have_written_it(
        tmp_path_factory: pytest.TempPathFactory, kind: str, mode: int, other_owner: bool, shared_group: bool) -> None:
    """The oracle, written from the promise: refused when another user owns it, everyone may write it, or
    a group with other members may write it."""
    folder = tmp_path_factory.mktemp("cfg")
    path = folder / f"file.{kind}"
    path.write_text(TEXT[kind])
    if other_owner or shared_group:
        os.chown(path, OTHER_UID if other_owner else -1, UNKNOWN_GID if shared_group else -1)
    path.chmod(mode)
    refused = other_owner or bool(mode & 0o002) or (shared_group and bool(mode & 0o020))
    if refused:
        with pytest.raises(ConfigFileError, match="not used"):
            READERS[kind](path)
    else:
        assert READERS[kind](path)


def test_a_file_in_a_folder_others_can_change_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone may replace the file
    (shared / "mp.yaml").write_text("pod: eu1\n")
    with pytest.raises(ConfigFileError, match="which other users can change"):
        read_config_file(shared / "mp.yaml")


def test_a_file_in_a_sticky_folder_like_tmp_is_fine(tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "mp.yaml").write_text("pod: eu1\n")
    assert read_config_file(sticky / "mp.yaml") == {"pod": "eu1"}


@needs_root
def test_a_link_to_another_users_file_is_judged_by_where_it_leads(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.env"
    theirs.write_text("MP_WORKSPACE_SECRET=x\n")
    os.chown(theirs, OTHER_UID, OTHER_UID)
    (tmp_path / "mine.env").symlink_to(theirs)
    with pytest.raises(ConfigFileError, match="belongs to another user"):
        read_env_file(tmp_path / "mine.env")


def test_an_access_list_letting_another_user_write_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mp.yaml"
    path.write_text("pod: eu1\n")
    path.chmod(0o600)
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in [
        (0x01, 6, 0xFFFFFFFF), (0x02, 6, OTHER_UID), (0x04, 0, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF),
        (0x20, 0, 0xFFFFFFFF)])
    try:
        os.setxattr(path, "system.posix_acl_access", acl)
    except OSError as exc:
        pytest.skip(f"this file system keeps no access lists ({exc.strerror})")
    with pytest.raises(ConfigFileError, match=f"user {OTHER_UID}"):
        read_config_file(path)


def test_the_command_line_refuses_a_writable_config_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "mp.yaml"
    path.write_text("pod: eu1\n")
    path.chmod(0o666)
    done = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert done.exit_code == 2
    assert "can be changed by every user" in done.output and "ssh" in done.output
