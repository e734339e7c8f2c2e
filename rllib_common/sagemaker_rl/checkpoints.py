"""Checkpoints that survive spot interruptions: numbered folders, committed atomically, newest found on start.

SageMaker syncs the checkpoint folder (``/opt/ml/checkpoints``) to ``checkpoint_s3_uri`` while the job runs and copies
it back when a spot job restarts. A checkpoint is written into ``iteration-000042.partial`` and renamed to
``iteration-000042`` only once complete, so a job killed mid-save (or a sync that copied half a folder) never
resumes from a torn checkpoint; older ones beyond ``keep`` are deleted after the newer one is committed.

``StopSignal`` turns SIGTERM (spot interruption, StopTrainingJob, Ctrl-C of the local runner) into a flag that the
training loop checks between iterations, so the job saves a checkpoint and exits instead of dying mid-iteration.
SageMaker waits 120 s after SIGTERM before it kills the container; one training iteration is far shorter.
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

_NAME = re.compile(r"^iteration-(\d{6,})$")


class CheckpointStore:
    """Numbered, atomically committed checkpoints in one folder."""

    def __init__(self, folder: str | Path, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.folder = Path(folder)
        self.keep = keep

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Committed checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
        return sorted(found)

    def newest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save(self, iteration: int, write: Callable[[Path], object]) -> Path:
        """Call ``write(folder)`` into a scratch folder, then commit it as ``iteration-NNNNNN`` and prune old ones."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"iteration-{iteration:06d}"
        scratch = final.with_name(final.name + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        write(scratch.resolve())
        if final.exists():  # the same iteration saved again (a resumed run that did not train): replace it
            shutil.rmtree(final)
        scratch.rename(final)
        for _, old in self.checkpoints()[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final


class StopSignal:
    """SIGTERM (and SIGINT) set ``requested`` instead of killing the process; a second signal kills as usual."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.requested: str | None = None
        self._previous = {s: signal.signal(s, self._handle) for s in signals}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:  # asked twice: stop now
            self.restore()
            signal.raise_signal(signum)
            return
        self.requested = signal.Signals(signum).name
        print(f"{self.requested} received: saving a checkpoint after this iteration, then stopping", flush=True)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
