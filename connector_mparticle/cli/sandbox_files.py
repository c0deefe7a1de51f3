"""``mparticle-dsr sandbox --write-config FILE``: the sandbox's connector config and its env file, on disk.

Both go through :mod:`connector_mparticle.files` like every file the connector writes: 0600 (the env file holds
the sandbox's secrets), in a folder that is the user's alone (created 0700 if missing), never through a link,
replaced by a rename. A file already there is replaced only if ``mparticle-dsr sandbox`` wrote it (its first
line says so: it may be someone's real config); both files are checked before either is written.
"""

from __future__ import annotations

from pathlib import Path

from connector_mparticle.errors import MParticleError
from connector_mparticle.files import Folder, folder_path
from connector_mparticle.sandbox.command_line import WRITTEN_BY, WriteRefused

__all__ = ["write_sandbox_files"]

MAX_BYTES = 1024 * 1024  #: larger than any file the sandbox writes
LOCK_WAIT_SECONDS = 5.0


def write_sandbox_files(config: Path, config_text: str, env: Path, env_text: str) -> None:
    """Write the config file and its env file; :class:`WriteRefused` saying why if either cannot be."""
    files = ((config, config_text), (env, env_text))
    try:
        for path, _ in files:
            _check_replaceable(path)
        for path, text in files:
            target = folder_path(path)
            with Folder.open(target.parent) as folder, folder.lock(target.name) as lock:
                if not lock.acquire(LOCK_WAIT_SECONDS):
                    raise WriteRefused(f"{path} is being written by another mparticle-dsr sandbox; try again")
                folder.sweep([target.name])  # what a sandbox killed mid-write left
                folder.write(target.name, text.encode())
    except (MParticleError, ValueError) as exc:
        raise WriteRefused(f"cannot write {path}: {getattr(exc, 'message', exc)}") from None


def _check_replaceable(path: Path) -> None:
    target = folder_path(path)
    with Folder.open(target.parent) as folder:
        existing = folder.read(target.name, MAX_BYTES)
    if existing is not None and not existing.startswith(WRITTEN_BY.encode()):
        raise WriteRefused(f"{path} exists and was not written by mparticle-dsr sandbox; choose another "
                           "--write-config name")
