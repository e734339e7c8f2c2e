"""Checkpoints that survive spot interruptions and torn uploads: numbered folders with a manifest, newest complete
one found on start.

SageMaker syncs the checkpoint folder (``/opt/ml/checkpoints``) to ``checkpoint_s3_uri`` while the job runs, one file
at a time as files appear, and copies whatever reached S3 back when a spot job restarts. So a folder can come back
without some of its files (the job was stopped mid-upload), and folders deleted or renamed locally can come back too.
A checkpoint is therefore committed in three steps:

1. ``write(folder)`` fills ``iteration-000042.partial``;
2. ``MANIFEST.json`` is written last into it: every other file's relative path, size and SHA-256;
3. the folder is renamed to ``iteration-000042``.

A checkpoint is *complete* when its manifest is there and every file it lists is there with its size (and, for the
one a run resumes from, its SHA-256). :meth:`CheckpointStore.newest` returns the newest complete one, falling back to
older ones; :meth:`CheckpointStore.clean` removes what can never be resumed from (``*.partial`` scratch folders and
incomplete numbered folders); after each save only the newest ``keep`` complete checkpoints stay.

``StopSignal`` turns SIGTERM (spot interruption, StopTrainingJob, ``docker stop``; the training image's init process
forwards it to the entry point) into a flag that the training loop checks between iterations, so the job saves a
checkpoint and the model and exits instead of dying mid-iteration. SageMaker waits 120 s after SIGTERM before it kills
the container; one training iteration is far shorter.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

_NAME = re.compile(r"^iteration-(\d{6,})$")
MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = "sagemaker_rl.checkpoint/1"


@dataclass(frozen=True)
class Incomplete:
    """A numbered checkpoint folder that cannot be resumed from, and why."""

    iteration: int
    path: Path
    reason: str


class CheckpointStore:
    """Numbered checkpoints in one folder, each committed with a manifest (see the module docstring)."""

    def __init__(self, folder: str | Path, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        # absolute: RLlib opens checkpoint paths through pyarrow, which refuses a relative one ("empty scheme")
        self.folder = Path(folder).absolute()
        self.keep = keep

    def _numbered(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
        return sorted(found)

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints (manifest and every file it lists, by size), oldest first."""
        return [(n, p) for n, p in self._numbered() if problem(p, hashes=False) is None]

    def incomplete(self) -> list[Incomplete]:
        """Numbered folders that are not complete checkpoints (a torn upload, or a folder of unknown origin)."""
        return [Incomplete(n, p, reason) for n, p in self._numbered() if (reason := problem(p, hashes=False))]

    def newest(self) -> Path | None:
        """The newest complete checkpoint, every file's checksum verified; older ones when newer ones fail."""
        for _, path in reversed(self.checkpoints()):
            if problem(path, hashes=True) is None:
                return path
        return None

    def clean(self) -> list[str]:
        """Remove what no run can resume from: ``*.partial`` scratch folders and incomplete numbered folders.

        Returns one line per removed folder, saying why (for the job's log). Call it once at start, before training:
        the job that wrote them is gone, so they never become complete.
        """
        removed = []
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("iteration-*.partial")):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"{path.name}: an unfinished save")
        for item in self.incomplete():
            shutil.rmtree(item.path, ignore_errors=True)
            removed.append(f"{item.path.name}: {item.reason}")
        return removed

    def save(self, iteration: int, write: Callable[[Path], object]) -> Path:
        """``write(folder)`` into a scratch folder, add the manifest, commit it as ``iteration-NNNNNN``, prune."""
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"iteration-{iteration:06d}"
        scratch = final.with_name(final.name + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        write(scratch)
        if not scratch.is_dir():
            raise RuntimeError(f"the checkpoint writer left nothing in {scratch}")
        write_manifest(scratch, iteration)
        if final.exists():  # the same iteration saved again (a resumed run that did not train): replace it
            shutil.rmtree(final)
        scratch.rename(final)
        self._prune()
        return final

    def _prune(self) -> None:
        kept = {p for _, p in self.checkpoints()[-self.keep:]}
        for _, path in self._numbered():
            if path not in kept:  # older complete ones, and incomplete ones of any age
                shutil.rmtree(path, ignore_errors=True)
        for path in self.folder.glob("iteration-*.partial"):
            shutil.rmtree(path, ignore_errors=True)


def write_manifest(folder: Path, iteration: int) -> Path:
    """``MANIFEST.json``: every file under ``folder`` (but itself) with its size and SHA-256; written last."""
    files = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name not in (MANIFEST, MANIFEST + ".tmp"):
            files[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    manifest = folder / MANIFEST
    scratch = manifest.with_name(MANIFEST + ".tmp")
    scratch.write_text(json.dumps({"format": MANIFEST_FORMAT, "iteration": iteration, "files": files}, indent=1))
    scratch.replace(manifest)
    return manifest


def problem(folder: Path, hashes: bool = True) -> str | None:
    """Why ``folder`` is not a complete checkpoint (None when it is): no manifest, or a file missing or changed."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return f"no {MANIFEST} (an unfinished upload, or not written by this store)"
    try:
        record = json.loads(manifest.read_text())
        files = record["files"]
        if record.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError(record.get("format"))
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST} is not a manifest of this store"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing ({len(files)} files listed)"
        if path.stat().st_size != expected.get("size"):
            return f"{name} has {path.stat().st_size} bytes, the manifest says {expected.get('size')}"
        if hashes and _sha256(path) != expected.get("sha256"):
            return f"{name} does not match its SHA-256 in the manifest"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StopSignal:
    """SIGTERM (and SIGINT) set ``requested`` instead of killing the process.

    A job gets SIGTERM more than once (SageMaker, then docker-compose when another container of the job exits): later
    SIGTERMs are noted and ignored, so the save and the exit in progress finish. A second SIGINT (Ctrl-C twice at a
    terminal) stops at once. Libraries may take the handler over (``ray.init`` installs its own): call
    :meth:`install` again after them.
    """

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
                 message: str = "saving a checkpoint after this iteration, then stopping"):
        self.requested: str | None = None
        self.message = message
        self.signals = signals
        self._previous: dict[signal.Signals, object] = {}
        self.install()

    def install(self) -> None:
        for sig in self.signals:
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            if signum == signal.SIGINT and self.requested == "SIGINT":  # Ctrl-C twice: stop now
                self.restore()
                signal.raise_signal(signum)
                return
            print(f"{name} received again: already stopping", file=sys.stderr, flush=True)
            return
        self.requested = name
        print(f"{name} received: {self.message}", flush=True)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
