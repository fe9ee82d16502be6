"""Child processes: own process group, stopped on every exit path, even when the harness is killed with -9.

Three layers, each covering what the one before cannot:
- `stop_group` ends a child, its process group and every process labelled with its tag (`BV_PROC_TAG` in the
  environment, inherited by all descendants) on normal exits, errors, timeouts and Ctrl-C. pi starts each
  tool command detached (a process group of its own) and an agent may leave a server running in the
  background, so the group alone is not enough: the tree is walked and the label is searched for. The harness
  is also a child subreaper, so what a tool double-forks stays in its tree instead of going to init;
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

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


TAG_VAR = "BV_PROC_TAG"
_PR_SET_CHILD_SUBREAPER = 36
_tags: dict[int, str] = {}  # pid of a spawned child -> its tag
_libc = None


def _prctl(option: int, value: int) -> None:
    global _libc
    if not sys.platform.startswith("linux"):
        return
    try:
        _libc = _libc or ctypes.CDLL(None, use_errno=True)
        _libc.prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """For a helper process of ours (Linux): the kernel sends `sig` when the process that started it dies."""
    _prctl(_PR_SET_PDEATHSIG, sig)


def _child_setup() -> None:
    """Runs in the child between fork and exec: die with the harness (Linux)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(cmd: list[str], env: dict[str, str] | None = None, user: tuple[int, int] | None = None,
          **kwargs) -> subprocess.Popen:
    """Popen in a new session (its own process group), labelled with a tag every descendant inherits, tied
    to the harness's life, optionally as another (unprivileged) `user` = (uid, gid). Note: the parent-death
    signal fires when the *thread* that spawned the child exits, so long-lived children (servers) are started by
    the thread that owns them for their whole life. (Python sets the ids before our preexec hook, which matters:
    a change of user clears the parent-death signal.)"""
    if user is not None:
        kwargs.update(user=user[0], group=user[1], extra_groups=[])
    global _subreaper
    if not _subreaper:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _subreaper = True
    tag = uuid.uuid4().hex
    kwargs["start_new_session"] = True
    proc = subprocess.Popen(cmd, env={**(os.environ if env is None else env), TAG_VAR: tag},
                            preexec_fn=_child_setup, **kwargs)
    _tags[proc.pid] = tag
    _guardian.watch(proc.pid, tag)
    return proc


_subreaper = False


def _tree(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def tagged(tag: str) -> list[int]:
    """Processes carrying `tag` in their environment (the child and whatever it started, detached or not)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(TAG_VAR) == tag:
                found.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return found


def _kill(pids, sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap_strays(pids) -> None:
    """Orphans reparented to us (the subreaper) are not Popen's to wait for: collect their exit status."""
    import time

    known = set(_tags)
    waiting = {pid for pid in pids if pid not in known}
    deadline = time.monotonic() + 2.0
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    waiting.discard(pid)
            except ChildProcessError:  # not (yet) ours: gone, or still with a parent that is dying
                if not psutil.pid_exists(pid):
                    waiting.discard(pid)
        if waiting:
            time.sleep(0.01)


def stop_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the child, its group and descendants, then SIGKILL what is left, labelled strays included;
    never raises."""
    tag = _tags.get(proc.pid)
    # Before the leader dies and its children scatter (or die into zombies that no longer show their tag).
    tree = set(_tree(proc.pid)) | set(tagged(tag) if tag else [])
    if proc.poll() is None or tree:
        _signal_all(proc, tree, signal.SIGTERM, grace_s)
    # Grandchildren (a shell's children, node workers, detached tools) can outlive the leader: kill them all.
    strays = tree | set(tagged(tag) if tag else [])
    _signal_all(proc, strays, signal.SIGKILL, grace_s)
    _reap_strays(strays)
    _tags.pop(proc.pid, None)
    _guardian.forget(proc.pid, tag)


def _signal_all(proc: subprocess.Popen, pids: set[int], sig: int, grace_s: float) -> None:
    _signal_group(proc.pid, sig)
    _kill(pids, sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# The guardian: reads "+PGID TAG" / "-PGID TAG" lines; at end of input (the harness is gone) it kills the groups
# and every process still carrying one of the tags.
_GUARD = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
live = {}
for line in sys.stdin:
    try:
        op, rest = line[0], line[1:].split()
        pgid, tag = int(rest[0]), rest[1]
    except (ValueError, IndexError):
        continue
    if op == "+":
        live[pgid] = tag
    else:
        live.pop(pgid, None)
def tagged():
    want = {("%s=%s" % ("BV_PROC_TAG", t)).encode() for t in live.values()}
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    if want & set(f.read().split(b"\0")):
                        pids.append(int(name))
            except OSError:
                pass
    return pids
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pgid in live:
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
    for pid in tagged() if live else []:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    if live and sig == signal.SIGTERM:
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

    def watch(self, pgid: int, tag: str) -> None:
        self._send(f"+{pgid} {tag}\n")

    def forget(self, pgid: int, tag: str | None) -> None:
        if self._proc is not None:
            self._send(f"-{pgid} {tag or '-'}\n")

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
