"""One child process: start it with its output in a log, wait until it is ready, stop it.

Why one helper: the local influxd, `make run`'s gunicorn and nginx, and the tests' gunicorn and
nginx all need the same care: a child that dies with its parent (no orphan after a Ctrl-C or a
killed test run), readiness checked by asking the service rather than by sleeping, a stop that
asks first and kills after a timeout, and, when anything fails, the tail of the child's own log
in the error instead of a bare timeout. Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: ask Linux for SIGTERM when the parent dies, and leave the terminal's process
    group (a Ctrl-C is handled by the parent, which stops its children in order)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()


def http_ok(url: str, statuses: tuple[int, ...] = (200,)) -> Callable[[], bool]:
    """A readiness check: `url` answers with one of `statuses`."""
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status in statuses
        except OSError:
            return False

    return check


class ChildProcess:
    def __init__(self, name: str, args: Sequence[str], log_path: Path | None,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 stop_signal: int = signal.SIGTERM) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, ready: Callable[[], bool], timeout: float = 60) -> ChildProcess:
        """Start, then wait until `ready()`; on failure stop it and raise with its log's tail.
        Without a log path the child writes to this process's own output (`make run`)."""
        if self.log_path is None:
            self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd,
                                         preexec_fn=die_with_parent)
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdout=log,
                                             stderr=log, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> None:
        """Ask it to stop (`stop_signal`), wait up to `timeout`, then kill it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None:
            return "(its output is above)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
