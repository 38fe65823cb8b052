"""The collector's state on disk belongs to its user alone: private folders, no symlinks followed.

Why: the state folder holds the period's salt (with it, a visitor's IP is recovered from the stored
hash by trying every address), the spool (whatever lies there is delivered to InfluxDB) and the tag
registry (files a public beacon makes the collector create and append to). A local user who could
create any of them first, or put a file or symbolic link in them, could plant a salt, forge points,
or make one beacon write to any file the collector may write. So:

- the default location is per user and private (`$XDG_STATE_HOME/analytics_bp`, else
  `~/.local/state/analytics_bp`); only without a usable home is it `<tmp>/analytics_bp-<uid>`,
  which must then be this user's own (another user may have created it first: refused);
- at start-up every folder and file under the state, salt and spool folders must be owned by this
  user, not writable by group or others, and no symbolic link (`tree_problem`); the caller turns
  the first problem into one line that names the setting;
- every file inside is opened with O_NOFOLLOW and checked after opening (`open_private`), so a link
  or a stranger's file that appears later is refused (`UnsafeState`), never followed.

Filesystem only: no settings, no Flask.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

APP_DIR = "analytics_bp"
NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeState(OSError):
    """A file in the state folder is a symbolic link, or not this user's own: refused, not used."""


def default_state_dir(environ: Mapping[str, str] = os.environ) -> str:
    """This user's private state folder (XDG base directory spec), or the temp-dir fallback."""
    home = environ.get("HOME", "")
    xdg = environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(xdg) and _owned_dir(xdg):
        return os.path.join(xdg, APP_DIR)
    if os.path.isabs(home) and _owned_dir(home):
        return os.path.join(home, ".local", "state", APP_DIR)
    return os.path.join(tempfile.gettempdir(), f"{APP_DIR}-{os.geteuid()}")


def _owned_dir(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def entry_problem(st: os.stat_result) -> str:
    """Why an entry of the state tree may not be used ('' when it may)."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return "is neither a regular file nor a folder"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""


def private_dirs(path: str | Path) -> None:
    """Create `path` and any missing folder above it, each mode 0700 whatever the umask lets
    through (mkdir's mode is masked, never widened): a process started with umask 000 must not
    leave a folder of its state that its next start refuses."""
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        missing.append(current)
        current = os.path.dirname(current)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another worker was first
            os.mkdir(folder, 0o700)


def make_private_dir(path: str) -> str:
    """Create `path` (mode 0700) unless it exists; the problem with it, or '' when it is usable.

    The folder above it must not let others replace it: writable by others only with the sticky
    bit (as /tmp is)."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        private_dirs(path)
    except OSError as err:
        return f"cannot be created ({err.strerror})"
    try:
        st = os.lstat(path)
        up = os.stat(parent)
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    problem = entry_problem(st)
    if not problem and not stat.S_ISDIR(st.st_mode):
        problem = "is not a folder"
    if not problem and up.st_mode & 0o002 and not up.st_mode & stat.S_ISVTX:
        problem = f"is in {parent}, which others may write to (no sticky bit)"
    return problem


def tree_problem(root: str) -> tuple[str, str]:
    """(path, problem) of the first entry under `root` that may not be used, or ('', '')."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            try:
                problem = entry_problem(os.lstat(path))
            except FileNotFoundError:
                continue
            if problem:
                return path, problem
    return "", ""


def open_private(path: str | Path, flags: int, mode: int = 0o600) -> int:
    """os.open without following a symbolic link, refusing what is not this user's regular file."""
    try:
        fd = os.open(path, flags | NOFOLLOW, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeState(errno.ELOOP, "is a symbolic link: refused", str(path)) from None
        raise
    problem = entry_problem(os.fstat(fd))
    if problem:
        os.close(fd)
        raise UnsafeState(errno.EPERM, f"{problem}: refused", str(path))
    return fd


def read_private(path: str | Path) -> bytes:
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def read_or_create_secret(path: Path, size: int) -> bytes:
    """The random secret in `path` (mode 0600), created atomically by whichever process is first.

    Creation writes a temporary file and hard-links it into place: the link fails if another
    process won, and then theirs is read. A secret of the wrong size is replaced."""
    with contextlib.suppress(FileNotFoundError):
        data = read_private(path)
        if len(data) == size:
            return data
        path.unlink()
    tmp = path.with_name(f".{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, secrets.token_bytes(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return read_private(path)
