"""Commands a notebook runs: to their end, with their output streamed and a failure that fails the cell (``run``),
or beside the notebook, such as a server (``Background``).

A shell escape (``!cmd``) would carry on after a failing command; these raise :class:`CommandError` with the
command's last lines. Commands are found in the notebook kernel's own environment first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .processes import end_process


class NotebookError(RuntimeError):
    """A notebook step that cannot go on: a missing setting, or a command that failed; the message says which."""


class CommandError(NotebookError):
    """A command ``run`` started ended with a non-zero status; ``tail`` holds its last output lines."""

    def __init__(self, argv: Sequence[str], returncode: int, tail: Sequence[str]):
        self.argv, self.returncode, self.tail = list(argv), returncode, list(tail)
        shown = "\n".join(self.tail)
        super().__init__(f"{' '.join(self.argv)} exited with status {returncode}; its last lines:\n{shown}")



def _resolve(program: str) -> str:
    """A console script of the notebook kernel's own environment when there is one (a kernel's PATH may not hold
    its virtual environment's ``bin``), else the name as given."""
    beside = Path(sys.executable).parent / program
    return str(beside) if os.sep not in program and beside.is_file() else program


def run(*argv: Any, cwd: str | os.PathLike | None = None, echo: Callable[[str], bool] | None = None,
        log: str | os.PathLike | None = None, tail: int = 40) -> list[str]:
    """Run a command to its end, printing its output (stdout and stderr, merged) as it comes; return the lines.

    A failing command raises ``CommandError`` with its last ``tail`` lines, so the notebook cell fails (a shell
    escape, ``!cmd``, would carry on). ``echo`` chooses the lines printed (all by default); ``log`` receives them all.
    Arguments are turned into strings (numbers, paths).
    """
    args = [str(a) for a in argv]
    if not args:
        raise NotebookError("run() needs a command")
    args[0] = _resolve(args[0])
    last: deque[str] = deque(maxlen=tail)
    lines: list[str] = []
    try:
        process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1, errors="replace")
    except FileNotFoundError:
        raise NotebookError(f"no command {argv[0]!r}: is the project installed in this kernel's environment "
                            f"({sys.executable})? pip install -e '.[test]'") from None
    log_file = open(log, "w", encoding="utf-8") if log is not None else None  # noqa: SIM115 - closed below
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            last.append(line)
            if log_file is not None:
                log_file.write(raw)
            if echo is None or echo(line):
                print(line, flush=True)
        process.wait()
    except BaseException:  # an interrupted cell (KeyboardInterrupt) must not leave the command running
        end_process(process)
        raise
    finally:
        process.stdout.close()
        if log_file is not None:
            log_file.close()
    if process.returncode != 0:
        raise CommandError(args, process.returncode, list(last))
    return lines



class Background:
    """A command running beside the notebook (a server); ``stop()`` ends it. Its output goes to ``log``."""

    def __init__(self, *argv: Any, log: str | os.PathLike, ready_url: str | None = None, timeout_s: float = 60.0,
                 cwd: str | os.PathLike | None = None):
        args = [str(a) for a in argv]
        args[0] = _resolve(args[0])
        self.argv = args
        self.log = Path(log)
        self._log_file = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(args, cwd=cwd, stdout=self._log_file, stderr=subprocess.STDOUT, text=True)
        if ready_url is not None:
            self.wait_until_ready(ready_url, timeout_s)

    def wait_until_ready(self, url: str, timeout_s: float) -> None:
        """Poll ``url`` until it answers 200; the command ending first, or the time running out, is an error."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                self._close_log()
                raise NotebookError(f"{' '.join(self.argv)} ended with status {self.process.returncode} before "
                                    f"{url} answered:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise NotebookError(f"{url} did not answer within {timeout_s:g} s; the command's output:\n"
                                    f"{self.log.read_text()[-3000:]}")
            time.sleep(0.25)

    def stop(self, timeout_s: float = 10.0) -> int:
        """End the command (SIGTERM, then SIGKILL after ``timeout_s``); returns its exit status."""
        code = end_process(self.process, timeout_s)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if not self._log_file.closed:
            self._log_file.close()
