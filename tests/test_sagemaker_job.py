"""train-mabs.py as a single-host SageMaker job: the contract's folders, bad hyperparameters, spot stop and resume.

The job tree is written as SageMaker writes it and the entry point is run in a subprocess with
``SAGEMAKER_BASE_DIR`` pointing at it, the way the toolkit runs it (the hyperparameters echoed on the command line).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from job_trees import write_job

TRAIN = Path(__file__).resolve().parents[1] / "rllib_src" / "train-mabs.py"
TINY = {"num_games": 8, "train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "conv_filters": [4],
        "hidden": 16, "eval_every": 0, "checkpoint_every": 1, "num_env_runners": 0, "imitate": ""}

pytestmark = pytest.mark.slow


def sdk_v2(hyperparameters: dict) -> dict:
    """Hyperparameters as the SDK v2 estimators write them: every value JSON-encoded."""
    return {key: json.dumps(value) for key, value in hyperparameters.items()}


def start_job(base: Path, hyperparameters: dict) -> subprocess.Popen:
    write_job(base, sdk_v2(hyperparameters))
    argv = [a for k, v in hyperparameters.items() for a in (f"--{k}", json.dumps(v))]  # the toolkit's echo
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SM_NUM_CPUS": "2", "SM_NUM_GPUS": "0"}
    return subprocess.Popen([sys.executable, str(TRAIN), *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_job_writes_model_output_and_checkpoints_where_sagemaker_collects_them(tmp_path: Path) -> None:
    base = tmp_path / "ml"
    job = start_job(base, {**TINY, "iterations": 2, "rl.training.lr": 0.001, "eval_every": 2, "eval_games": 2,
                           "eval_opponents": "safe"})
    out, _ = job.communicate(timeout=420)
    assert job.returncode == 0, out
    for path in ("model/policy.pt", "model/policy.onnx", "model/rl_module", "model/config.json",
                 "output/data/metrics.csv", "output/data/learning_curve.png", "output/data/replay.gif",
                 "checkpoints/iteration-000002"):
        assert (base / path).exists(), f"{path} missing\n{out}"
    assert not (base / "output" / "failure").exists()
    assert "episode_return_mean: " in out and "win_rate_vs_safe: " in out
    config = json.loads((base / "model" / "config.json").read_text())  # the policy format: game spec + settings
    assert config["training"]["num_games"] == 8 and config["training"]["overrides"] == ["training.lr=0.001"]
    assert config["game"]["width"] == 11 and config["format"] == "battlesnake-policy/1"


def test_an_unknown_hyperparameter_fails_the_job_naming_it_before_ray_starts(tmp_path: Path) -> None:
    base = tmp_path / "ml"
    job = start_job(base, {**TINY, "num_gmaes": 8})
    out, _ = job.communicate(timeout=120)
    assert job.returncode == 2, out
    failure = (base / "output" / "failure").read_text()
    assert "unknown hyperparameter 'num_gmaes'" in failure
    assert "Started a local Ray instance" not in out


def test_sigterm_saves_a_checkpoint_and_the_model_and_the_next_job_resumes_from_it(tmp_path: Path) -> None:
    base = tmp_path / "ml"
    job = start_job(base, {**TINY, "minutes": 5, "checkpoint_every": 1000})
    lines = []
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for the first finished iteration, then interrupt like a spot reclaim
        line = job.stdout.readline()
        lines.append(line)
        if line.startswith("iteration: 1") or not line:
            break
    job.send_signal(signal.SIGTERM)
    out, _ = job.communicate(timeout=120)
    out = "".join(lines) + out
    assert job.returncode == 0, out
    assert "stopped by SIGTERM" in out
    saved = sorted(p.name for p in (base / "checkpoints").iterdir())
    assert saved and saved[-1].startswith("iteration-") and not saved[-1].endswith(".partial"), saved
    assert (base / "model" / "policy.pt").exists()
    stopped_at = int(saved[-1].split("-")[1])

    again = start_job_again(base, {**TINY, "iterations": stopped_at + 1})
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert f"at iteration {stopped_at}" in out and f"iteration: {stopped_at + 1}" in out


def start_job_again(base: Path, hyperparameters: dict) -> subprocess.Popen:
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(sdk_v2(hyperparameters)))
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SM_NUM_CPUS": "2", "SM_NUM_GPUS": "0"}
    return subprocess.Popen([sys.executable, str(TRAIN)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
