"""Resuming tells the truth: a relative ``--out`` resumes, a torn newest checkpoint is passed over for the newest
complete one (and removed), settings that may change are applied and reported, settings that would change the network
are refused before Ray starts, and config.json records what the resumed run runs.

One tiny run of train-mabs.py makes the checkpoints; each resume is another run of it in a subprocess, from the run's
parent folder so that ``--out runs/local`` is relative, as in the README.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TRAIN = Path(__file__).resolve().parents[1] / "rllib_src" / "train-mabs.py"
TINY = ["--out", "runs/local", "--num-games", "8", "--train-batch-size", "256", "--minibatch-size", "128",
        "--steps-per-sample", "8", "--eval-every", "0", "--eval-opponents", "", "--checkpoint-every", "1",
        "--no-export", "--conv-filters", "4", "--hidden", "16"]

pytestmark = pytest.mark.slow


def train(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN), *TINY, *extra], cwd=cwd, capture_output=True, text=True,
                          timeout=420)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder after 2 iterations, a checkpoint of each (``runs/local`` under the returned folder)."""
    cwd = tmp_path_factory.mktemp("resume")
    done = train(cwd, "--iterations", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd


def copy_of(first_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(first_run / "runs", tmp_path / "runs")
    return tmp_path


def test_a_relative_out_resumes_and_a_changed_learning_rate_is_applied_and_recorded(first_run: Path,
                                                                                    tmp_path: Path) -> None:
    cwd = copy_of(first_run, tmp_path)
    done = train(cwd, "--iterations", "3", "--resume", "--lr", "0.001")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "URI has empty scheme" not in done.stderr
    assert "resumed with a changed setting: lr 0.0003 -> 0.001" in done.stdout
    checkpoint = cwd / "runs" / "local" / "checkpoints" / "iteration-000002"
    assert f"resumed from {checkpoint} at iteration 2 (learning rate now 0.001, 0 env runners)" in done.stdout
    assert "iteration: 3" in done.stdout.splitlines()
    assert json.loads((cwd / "runs" / "local" / "config.json").read_text())["lr"] == 0.001
    saved = json.loads((cwd / "runs" / "local" / "checkpoints" / "iteration-000003" / "train_args.json").read_text())
    assert saved["lr"] == 0.001


def test_a_setting_that_changes_the_network_is_refused_naming_it_before_ray_starts(first_run: Path,
                                                                                    tmp_path: Path) -> None:
    cwd = copy_of(first_run, tmp_path)
    done = train(cwd, "--iterations", "3", "--resume", "--hidden", "32", "--algorithm", "APPO")
    assert done.returncode == 2
    assert "cannot resume from " in done.stderr
    assert "algorithm ('PPO' in the checkpoint, 'APPO' now); hidden (16 in the checkpoint, 32 now)" in done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert json.loads((cwd / "runs" / "local" / "config.json").read_text())["hidden"] == 16  # untouched


def test_a_torn_newest_checkpoint_is_passed_over_and_removed_and_its_metrics_redone(first_run: Path,
                                                                                     tmp_path: Path) -> None:
    cwd = copy_of(first_run, tmp_path)
    checkpoints = cwd / "runs" / "local" / "checkpoints"
    torn = checkpoints / "iteration-000002"
    lost = next(p for p in sorted(torn.rglob("*")) if p.is_file() and p.name != "MANIFEST.json")
    lost.unlink()  # what an interrupted upload brings back
    (checkpoints / "iteration-000003.partial").mkdir()
    done = train(cwd, "--iterations", "3", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"removed an incomplete checkpoint: iteration-000002: {lost.relative_to(torn)} is missing" in done.stdout
    assert "removed an incomplete checkpoint: iteration-000003.partial: an unfinished save" in done.stdout
    assert f"resumed from {checkpoints / 'iteration-000001'} at iteration 1" in done.stdout
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iteration-000002", "iteration-000003"]
    with (cwd / "runs" / "local" / "metrics.csv").open() as fh:
        assert [row["iteration"] for row in csv.DictReader(fh)] == ["1", "2", "3"]  # iteration 2 once, redone


def test_resume_without_a_complete_checkpoint_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    done = train(tmp_path, "--iterations", "1", "--resume")
    assert done.returncode == 2
    assert f"--resume but no complete checkpoint in {tmp_path / 'runs' / 'local' / 'checkpoints'}" in done.stderr
