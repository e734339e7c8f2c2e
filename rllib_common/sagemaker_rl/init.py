"""PID 1 of the training image: runs SageMaker's ``train`` and forwards SIGTERM to the training script.

SageMaker starts a training container as ``docker run IMAGE train`` and stops it (StopTrainingJob, a spot
interruption; ``docker stop`` and docker-compose in SDK local mode) with SIGTERM to PID 1, then SIGKILL after a grace
period. Without an init, PID 1 is the sagemaker-training toolkit's ``train``: the kernel delivers no signal to a PID 1
that installed no handler for it, and the toolkit installs none and forwards nothing, so the training script never
hears of the stop and is killed mid-iteration. This init (the image's ``ENTRYPOINT``)::

    python -m sagemaker_rl.init train          # what the container runs: ENTRYPOINT + the command SageMaker gives

- runs its command (``train``) as its only child;
- on SIGTERM, SIGINT or SIGHUP sends the same signal to the *training script*: the child's own child processes (the
  toolkit runs the entry point, ``python train-mabs.py ...``, as its child), or the child itself while no script has
  started yet (the toolkit is still fetching the code). Not to the toolkit while it runs a script or reports one that
  ended (docker-compose stops a job's other containers the moment one exits: the toolkit must live to report the
  exit code), and not to the script's own processes (Ray's), which the script needs to save its checkpoint: the
  script decides;
- reaps orphaned processes, PID 1's duty (Ray's detached daemons end up there when their parent exits);
- exits with its child's exit code (128 + N when a signal N ended it) as soon as the child is gone.

Outside a container it works the same (as a child subreaper), which is how ``tests/test_sagemaker_init.py`` runs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_CHILD_SUBREAPER = 36


def children(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """The process ids whose parent is ``pid`` (read from ``/proc/<pid>/stat``), oldest first."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 19 and int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(fields[19]), int(entry.name)))  # start time, pid
    return [p for _, p in sorted(found)]


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _log(message: str) -> None:
    print(f"[sagemaker_rl.init] {message}", file=sys.stderr, flush=True)


def forward(sig: signal.Signals, child: int, script_seen: bool = False) -> list[int]:
    """Send ``sig`` to the training script: ``child``'s children; ``child`` itself when it has none and none was
    ``script_seen`` before (when one was, it has ended and the toolkit is reporting it). The process ids signalled."""
    targets = children(child)
    if not targets and script_seen:
        _log(f"{sig.name}: the training script has ended and the toolkit is reporting its exit: not forwarded")
        return []
    targets = targets or [child]
    for pid in targets:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    _log(f"{sig.name}: forwarded to the training script: "
         + ", ".join(f"{pid} ({command_of(pid)[:120]})" for pid in targets))
    return targets


def run(argv: list[str]) -> int:
    """Run ``argv`` as the child, forward signals, reap orphans; the child's exit code."""
    if not argv:
        _log("usage: python -m sagemaker_rl.init COMMAND [ARGS...]   (the image runs it with `train`)")
        return 2
    if os.getpid() != 1:  # not PID 1: become the reaper of our orphans anyway, so they end here too
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)
        except (OSError, AttributeError):
            pass
    watched = {*FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)  # taken one by one below, never lost in between
    try:
        child = subprocess.Popen(argv, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, []))
    except OSError as exc:
        _log(f"cannot run {argv[0]!r}: {exc}")
        return 127
    code = None
    script_seen = False  # has the child run a process of its own (the training script) yet?
    while code is None:
        info = signal.sigtimedwait(watched, 1.0)
        if not script_seen:
            script_seen = bool(children(child.pid))
        if info is None:  # a second passed: just look at the child's processes again
            continue
        if info.si_signo != signal.SIGCHLD:
            forward(signal.Signals(info.si_signo), child.pid, script_seen)
            continue
        while True:  # reap every exited process: the child, and orphans handed to us
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == child.pid:
                exit_code = os.waitstatus_to_exitcode(status)
                code = exit_code if exit_code >= 0 else 128 - exit_code
    child.returncode = code  # already reaped here: keep Popen from waiting on it again
    return code


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
