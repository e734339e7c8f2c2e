"""What a local run leaves: every simulated host's folder, log and exit, each job's artifacts, and why a job failed.

The docker-free local runner (``sagemaker_rl.local``) returns a :class:`LocalJobResult`; :class:`LocalJobError`
carries one when a job failed.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class LocalJobError(RuntimeError):
    """A local job failed; the message carries the failing host's ``output/failure`` (or its log's end)."""

    def __init__(self, message: str, result: LocalJobResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class HostResult:
    """One simulated host: where its files are and how it ended."""

    job: str
    host: str
    address: str  # its loopback IP for Ray
    base_dir: Path  # its SAGEMAKER_BASE_DIR
    log: Path  # its stdout and stderr
    exit_code: int | None = None  # None while running (or never started); negative: ended by that signal
    stopped_by_runner: str | None = None  # "killed": a simulated instance failure; "stopped": the job had ended
    ended_at: float = 0.0  # monotonic seconds

    @property
    def failure(self) -> str | None:
        path = self.base_dir / "output" / "failure"
        return path.read_text() if path.exists() else None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class JobResult:
    """One training job (two for a primary + secondary cluster) and its artifacts."""

    name: str
    hosts: list[HostResult]
    model_tar: Path
    output_tar: Path
    failure: str | None  # None when every host exited 0

    @property
    def success(self) -> bool:
        return self.failure is None


@dataclass
class LocalJobResult:
    """What a local run left: one :class:`JobResult` per job, the first being the primary (or only) job."""

    work_dir: Path
    jobs: list[JobResult]
    elapsed_s: float

    @property
    def success(self) -> bool:
        return all(j.success for j in self.jobs)

    @property
    def failure(self) -> str | None:
        return next((f"{j.name}: {j.failure}" for j in self.jobs if j.failure), None)

    @property
    def model_tar(self) -> Path:
        return self.jobs[0].model_tar

    @property
    def output_tar(self) -> Path:
        return self.jobs[0].output_tar

    @property
    def hosts(self) -> list[HostResult]:
        return [h for j in self.jobs for h in j.hosts]

    def host(self, host: str, job: int | str = 0) -> HostResult:
        the_job = self.jobs[job] if isinstance(job, int) else next(j for j in self.jobs if j.name == job)
        return next(h for h in the_job.hosts if h.host == host)

    def check(self) -> LocalJobResult:
        if not self.success:
            raise LocalJobError(f"local SageMaker job failed — {self.failure}", self)
        return self



def job_failure(hosts: list[HostResult], timed_out: bool, timeout_s: float | None) -> str | None:
    """Why a job failed: hosts the runner killed (simulated instance failures) first, then the first host that failed
    by itself (its output/failure, else its log's end); hosts the runner stopped after a failure say nothing."""
    reasons = [f"{h.host} was killed (a simulated instance failure)" for h in hosts if h.stopped_by_runner == "killed"]
    own = sorted((h for h in hosts if h.exit_code not in (0, None) and h.stopped_by_runner is None),
                 key=lambda h: (h.failure is None, h.ended_at))
    if own:
        h = own[0]
        reasons.append(f"{h.host} exited with code {h.exit_code}: {(h.failure or _tail(h.log_text())).strip()}")
    if timed_out:
        reasons.append(f"timed out after {timeout_s:g} s; every host was stopped")
    return "; ".join(reasons) or None


def _tail(text: str, lines: int = 20) -> str:
    return "(no output/failure; the end of its log:)\n" + "\n".join(text.splitlines()[-lines:])


def tar_folders(path: Path, folders: Sequence[Path]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for folder in folders:
            if folder.is_dir():
                for item in sorted(folder.iterdir()):
                    tar.add(item, arcname=item.name)
    return path

