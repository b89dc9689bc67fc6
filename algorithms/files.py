"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

The bytes go to a hidden temporary file in the same folder, which is flushed, ``fsync``-ed and
renamed over the final name, and the folder is ``fsync``-ed so that the rename survives a power
cut. A crash or ``kill -9`` at any point leaves the previous file untouched; a failed write
removes its temporary file and raises.
"""
from __future__ import annotations

import os

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(path: str) -> str:
    """The hidden temporary file a write of ``path`` by this process goes through."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}{TEMPORARY_SUFFIX}")


def write_atomically(path: str, data: bytes | str) -> str:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step; returns ``path``."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_folder(os.path.dirname(path) or os.curdir)
    return path


def fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
