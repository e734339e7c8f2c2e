"""Process control shared by the Ray node (``cluster``), the local runner (``local``) and the notebooks' commands.

Processes are always stopped by their own id, never by name: several Ray nodes, hosts and test runs share a machine.
``psutil`` is imported where it is used (the training image has it; the launcher never needs it).
"""

from __future__ import annotations

import signal
import subprocess
import time


def wait_gone(procs: list, timeout_s: float) -> list:
    """Wait until these ``psutil`` processes have exited; the ones still running at the timeout.

    A zombie counts as gone: an orphan's zombie stays until PID 1 reaps it, which some containers never do.
    """
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        running = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    running.append(proc)
            except psutil.NoSuchProcess:
                pass
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.1)


def kill_all(procs: list) -> None:
    """SIGKILL these ``psutil`` processes; those already gone are skipped."""
    import psutil

    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def create_time(pid: int) -> float:
    """When process ``pid`` started (0.0 when it is gone): with the pid, tells a process from a later one reusing
    its id."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return 0.0


def remember_tree(root_pid: int, pids: dict[int, float]) -> None:
    """Add every descendant of ``root_pid`` now running to ``pids`` (pid -> its create time), to stop them later
    even when they have left the tree (Ray detaches its processes into new process groups and sessions)."""
    import psutil

    try:
        for child in psutil.Process(root_pid).children(recursive=True):
            pids.setdefault(child.pid, create_time(child.pid))
    except psutil.NoSuchProcess:
        pass


def stop_tree(process: subprocess.Popen, pids: dict[int, float], graceful: bool) -> None:
    """Stop ``process`` and every process of ``pids`` that is still the one seen (not a reused pid): SIGTERM and up to
    10 s when ``graceful``, else SIGKILL; SIGKILL whatever outlives that. ``process`` itself is waited for through
    ``Popen``, which keeps its exit code."""
    import psutil

    sig = signal.SIGTERM if graceful else signal.SIGKILL
    procs = []
    for pid, created in pids.items():
        try:
            proc = psutil.Process(pid)
            if pid != process.pid and abs(proc.create_time() - created) < 0.01:
                procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    if process.poll() is None:
        process.send_signal(sig)
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    try:
        process.wait(10 if graceful else 3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    kill_all(wait_gone(procs, 10.0 if graceful else 3.0))


def end_process(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def die_with_parent() -> None:
    """For ``Popen(preexec_fn=...)``, Linux: the child gets SIGTERM when its parent dies, as a container's processes
    die with it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
