"""Start-up checks of the machine, not of the flags: folders that can be written and have room,
a folder that no other run holds, an X display that answers. Each raises a one-line UserError
that names the flag and the fix, before anything is started.
"""
from __future__ import annotations

import os
import socket
import sys

from .errors import UserError


def claim_folder(folder: str, flag: str) -> None:
    """Hold ``folder`` for this run (``files.lock_folder``); UserError if another run holds it."""
    from .files import lock_folder
    if not folder:
        raise UserError(f"argument {flag}: the folder name is empty (give a folder)")
    try:
        holder = lock_folder(folder)
    except OSError as err:   # a dangling symlink, a file in the way, a .lock that is a folder
        raise UserError(f"argument {flag}: {folder!r} cannot hold this run's lock file "
                        f"{os.path.join(folder, '.lock')!r} ({err.strerror or err}); choose "
                        "another folder, or make it a plain one") from None
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        raise UserError(f"argument {flag}: {folder!r} is in use by another run ({who}); wait "
                        f"for it to end, or choose another {flag}")



def check_display(display: str) -> None:
    """An X display that accepts connections: its socket, or TCP port 6000 + N for host:N."""
    if not display:
        raise UserError("argument -v/--visualize: no display (DISPLAY is not set); use -v 0, "
                        "or forward an X display")
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        raise UserError(f"argument -v/--visualize: DISPLAY={display!r} is not an X display "
                        "(expected host:N or :N); fix DISPLAY, or use -v 0")
    if host in ("", "unix"):
        family, address = socket.AF_UNIX, f"/tmp/.X11-unix/X{number}"
        if sys.platform.startswith("linux") and not os.path.exists(address):
            address = "\0" + address   # the abstract socket an X server also listens on
    else:
        family, address = socket.AF_INET, (host, 6000 + int(number))
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(address)
    except OSError as error:
        raise UserError(f"argument -v/--visualize: cannot reach the X display {display!r} "
                        f"({error.strerror or error}); start or forward an X server (see README, "
                        "Docker), or use -v 0") from None



# A generous bound on the longest path the trainer writes below a folder it is given: a
# checkpoint's temporary file, or a TensorBoard event file,
# "<game>/<alg>/<timestamp>_N/actor_<i>/events.out.tfevents.<time>.<host>.<pid>.<n>.v2".
LONGEST_NAME = 200


def existing_ancestor(path: str) -> str:
    """``path`` itself if it exists, else the nearest folder above it that does."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing


def check_printable(path: str, flag: str) -> None:
    """``path`` as given has no line break, tab or other control character (Unicode's Cc, and
    the line and paragraph separators): the program's lines name it as it is, and one would
    split them. Any other character is fine, spaces and bytes that are not UTF-8 included."""
    import unicodedata
    if any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in path):
        raise UserError(f"argument {flag}: {path!r} holds a line break or another control "
                        "character, which would split the lines that name it; choose another "
                        "name")


def check_writable(path: str, flag: str) -> None:
    """``path`` is a writable folder, or could be created as one: a real write succeeds in the
    nearest existing folder (root ignores mode bits, a read-only file system does not), and the
    names to create fit the file system's limits. Nothing is left behind."""
    import tempfile
    if not path:
        raise UserError(f"argument {flag}: the folder name is empty (give a folder)")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise UserError(f"argument {flag}: {path!r} holds bytes that are not text in this "
                        "system's encoding; choose another name") from None
    if os.path.islink(path) and not os.path.exists(path):
        raise UserError(f"argument {flag}: {path!r} is a symbolic link to nothing "
                        f"({os.readlink(path)!r}); remove it, or choose another folder")
    absolute = os.path.abspath(path)
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        raise UserError(f"argument {flag}: {path!r} is a file, not a folder "
                        "(choose a folder you can write to)")
    existing = existing_ancestor(absolute)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"argument {flag}: {path!r} is not writable "
                        "(choose a folder you can write to)")
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    path_max = os.pathconf(existing, "PC_PATH_MAX")
    to_create = os.path.relpath(absolute, existing).split(os.sep) if absolute != existing else []
    too_long = [name for name in to_create if len(os.fsencode(name)) > name_max]
    if too_long or len(os.fsencode(absolute)) + LONGEST_NAME + 1 > path_max:
        what = (f"the name {too_long[0][:40]!r}... has {len(os.fsencode(too_long[0]))} bytes, "
                f"the file system allows {name_max}" if too_long else
                f"the path is too long for the files written in it ({path_max} bytes at most)")
        raise UserError(f"argument {flag}: {path!r} cannot be used: {what} (choose a shorter "
                        "name)")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".asyncrl-write-test-")
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        raise UserError(f"argument {flag}: {path!r} cannot be written "
                        f"({err.strerror or err}); choose a folder you can write to") from None


def check_file_size_limit(needed_bytes: int) -> None:
    """The shell's file size limit (``ulimit -f``) lets this process write files of
    ``needed_bytes`` (a checkpoint, a shared vector): past it every write fails."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and soft < needed_bytes:
        kb = 1024
        raise UserError(f"the file size limit (`ulimit -f`) is {soft / kb:,.0f} KB and this "
                        f"run writes files of {needed_bytes / kb:,.0f} KB (its checkpoints and "
                        "shared parameters); raise it (`ulimit -f unlimited`)")


def check_room(folder: str, needed_bytes: int, flag: str) -> None:
    """The file system of ``folder`` has ``needed_bytes`` free (two checkpoints, say)."""
    info = os.statvfs(existing_ancestor(folder))
    free = info.f_bavail * info.f_frsize
    if free < needed_bytes:
        mb = 1024 * 1024
        raise UserError(f"argument {flag}: {folder!r} has {free / mb:.1f} MB free, and two "
                        f"checkpoints of this run need {needed_bytes / mb:.1f} MB (free some "
                        "space, or choose another folder)")
