"""Child processes: own process group, stopped on every exit path, even when the harness is killed with -9.

Three layers, each covering what the one before cannot:
- `stop_group` ends a child's whole process group (the agent's tool commands included) on normal exits,
  errors, timeouts and Ctrl-C;
- `signals_as_interrupt` turns SIGTERM and SIGHUP (a closed terminal, a scheduler, Ray cancelling a task) into
  the same `KeyboardInterrupt` path as Ctrl-C, so every `finally` runs and the MLflow run ends KILLED;
- on Linux each child gets a parent-death signal (SIGKILL when the harness dies), and a tiny guardian process
  holds the list of live process groups and kills them when the harness's end of its pipe closes, which is
  what a kill -9 of the harness looks like to it (grandchildren such as a tool's `sleep` get no
  parent-death signal of their own).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C (a KeyboardInterrupt) so the same cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signame = signal.Signals(signum).name


def interrupt_reason(exc: BaseException) -> str:
    return f"interrupted ({exc.signame})" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` in the main thread (no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Cleanup that must finish (ending an MLflow run): a second Ctrl-C/SIGTERM waits until the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            os.kill(os.getpid(), pending[0])


def _child_setup() -> None:
    """Runs in the child between fork and exec: die with the harness (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    """Popen in a new session (its own process group), tied to the harness's life. Note: the parent-death
    signal fires when the *thread* that spawned the child exits, so long-lived children (servers) are started
    by the thread that owns them for their whole life (their `with` block)."""
    kwargs["start_new_session"] = True
    proc = subprocess.Popen(cmd, preexec_fn=_child_setup, **kwargs)
    _guardian.watch(proc.pid)
    return proc


def stop_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left; never raises."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # Grandchildren (a shell's children, node workers) can outlive the leader: kill the group regardless.
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _guardian.forget(proc.pid)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# The guardian: reads "+PGID" / "-PGID" lines; at end of input (the harness is gone) it kills what is left.
_GUARD = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    try:
        op, pgid = line[0], int(line[1:])
    except ValueError:
        continue
    (groups.add if op == "+" else groups.discard)(pgid)
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    if groups and sig == signal.SIGTERM:
        time.sleep(1.0)
"""


class _Guardian:
    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._pid_owner: int | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._pid_owner != os.getpid():  # first use, or we are a forked child
                try:
                    self._proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _GUARD], stdin=subprocess.PIPE,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                  start_new_session=True, close_fds=True)
                    self._pid_owner = os.getpid()
                except OSError:
                    return
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        if self._proc is not None:
            self._send(f"-{pgid}\n")

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._pid_owner == os.getpid():
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
                self._proc = None


_guardian = _Guardian()
atexit.register(_guardian.close)
