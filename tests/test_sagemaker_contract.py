"""The SageMaker container contract, hyperparameters -> command line, and spot-safe checkpoints."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from job_trees import write_job

from sagemaker_rl import contract as sm
from sagemaker_rl.checkpoints import CheckpointStore, StopSignal
from sagemaker_rl.hyperparameters import HyperparameterError, to_argv

# ---------------------------------------------------------------- the contract


def test_a_job_tree_is_read_with_every_path_under_its_base_folder(tmp_path: Path) -> None:
    base = write_job(tmp_path / "ml", {"lr": "0.001"}, hosts=("algo-10", "algo-2", "algo-1"), current="algo-2")
    job = sm.load(environ={"SAGEMAKER_BASE_DIR": str(base)})
    assert job.in_sagemaker and job.base_dir == base
    assert job.hosts == ("algo-1", "algo-2", "algo-10")  # numeric order: algo-2 before algo-10
    assert job.current_host == "algo-2" and job.is_multi_host
    assert job.model_dir == base / "model" and job.output_data_dir == base / "output" / "data"
    assert job.failure_file == base / "output" / "failure" and job.checkpoint_dir == base / "checkpoints"
    assert job.channels == {"train": base / "input" / "data" / "train"}
    assert job.hyperparameters == {"lr": 0.001}


def test_sm_variables_win_over_the_files(tmp_path: Path) -> None:
    base = write_job(tmp_path / "ml", {"lr": "0.001"})
    job = sm.load(environ={"SAGEMAKER_BASE_DIR": str(base), "SM_MODEL_DIR": str(tmp_path / "m"),
                           "SM_HPS": json.dumps({"lr": 0.5}), "SM_NUM_CPUS": "7", "SM_NUM_GPUS": "1"})
    assert job.model_dir == tmp_path / "m" and job.hyperparameters == {"lr": 0.5}
    assert (job.num_cpus, job.num_gpus) == (7, 1)


def test_hyperparameters_are_read_whether_json_encoded_by_sdk_v2_or_raw_from_model_trainer() -> None:
    sdk_v2 = {"algorithm": '"PPO"', "lr": "0.001", "num_games": "64", "opponents": '["safe", "greedy"]',
              "no_export": "true"}
    raw = {"algorithm": "PPO", "lr": "0.001", "num_games": "64", "opponents": '["safe", "greedy"]',
           "no_export": "true"}
    expected = {"algorithm": "PPO", "lr": 0.001, "num_games": 64, "opponents": ["safe", "greedy"], "no_export": True}
    assert sm.decode_hyperparameters(sdk_v2) == expected
    assert sm.decode_hyperparameters(raw) == expected


def test_instance_groups_give_each_host_its_group(tmp_path: Path) -> None:
    groups = [{"instance_group_name": "rollout", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1", "algo-3"]},
              {"instance_group_name": "learner", "instance_type": "ml.g5.xlarge", "hosts": ["algo-2"]}]
    base = write_job(tmp_path / "ml", {}, hosts=("algo-1", "algo-2", "algo-3"), current="algo-3", groups=groups)
    job = sm.load(environ={"SAGEMAKER_BASE_DIR": str(base)})
    assert job.current_group == "rollout"
    assert job.hosts_of_group("learner") == ("algo-2",)
    assert job.group_of("algo-2").instance_type == "ml.g5.xlarge"
    with pytest.raises(sm.ContractError, match="no instance group named 'gpu'.*rollout, learner"):
        job.hosts_of_group("gpu")


@pytest.mark.parametrize("resources, message", [
    ("{not json", "resourceconfig.json is not valid JSON"),
    ('{"current_host": "algo-3", "hosts": ["algo-1"]}', "current host 'algo-3' is not among"),
    ('{"current_host": "algo-1", "hosts": "algo-1"}', "'hosts' must be a list"),
])
def test_a_malformed_resource_config_is_an_error_naming_it(tmp_path: Path, resources: str, message: str) -> None:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(resources)
    with pytest.raises(sm.ContractError, match=message):
        sm.load(environ={"SAGEMAKER_BASE_DIR": str(tmp_path)})


def test_without_a_job_tree_the_contract_is_a_local_single_host() -> None:
    job = sm.load(environ={"SAGEMAKER_BASE_DIR": "/nonexistent/ml"})
    assert not job.in_sagemaker and job.hosts == ("algo-1",) and job.current_host == "algo-1"


def test_an_exception_writes_the_failure_file_and_exits_non_zero(tmp_path: Path, monkeypatch) -> None:
    base = write_job(tmp_path / "ml", {})
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))

    @sm.failure_guard
    def entry_point() -> int:
        raise RuntimeError("the learner ran out of memory")

    assert entry_point() == 1
    text = (base / "output" / "failure").read_text()
    assert text.startswith("RuntimeError: the learner ran out of memory") and "Traceback" in text


# ---------------------------------------------------------------- hyperparameters -> command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    p.add_argument("--num-games", dest="num_games", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--minutes", type=float)
    p.add_argument("--iterations", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--opponents", nargs="*")
    p.add_argument("--overrides", nargs="*")
    return p


def test_hyperparameters_become_the_flags_they_name() -> None:
    argv = to_argv({"num_games": 64, "lr": 0.001, "no_export": True, "opponents": ["safe", "greedy"]}, parser())
    ns = parser().parse_args(argv)
    assert (ns.num_games, ns.lr, ns.no_export, ns.opponents) == (64, 0.001, True, ["safe", "greedy"])
    assert parser().parse_args(to_argv({"opponents": "safe,flood", "no_export": False}, parser())).opponents == [
        "safe", "flood"]


def test_dotted_and_tune_era_names_become_overrides_and_run_flags() -> None:
    argv = to_argv({"rl.training.lr": 0.0005, "rl.training.config.lambda_": 0.9, "rl.env_runners.sample_timeout_s":
                    30, "rl.training.stop.training_iteration": 7, "rl.training.stop.time_total_s": 90,
                    "rl.training.checkpoint_freq": 3, "overrides": ["training.gamma=0.98"]}, parser())
    ns = parser().parse_args(argv)
    assert sorted(ns.overrides) == ["config.lambda_=0.9", "env_runners.sample_timeout_s=30", "training.gamma=0.98",
                                    "training.lr=0.0005"]
    assert (ns.iterations, ns.minutes, ns.checkpoint_every) == (7, 1.5, 3)


def test_the_blog_posts_iteration_count_is_the_iterations_flag_and_cannot_be_given_twice() -> None:
    assert parser().parse_args(to_argv({"num_iters": 12}, parser())).iterations == 12
    with pytest.raises(HyperparameterError, match="'num_iters' and 'iterations' both set --iterations"):
        to_argv({"num_iters": 12, "iterations": 3}, parser())


@pytest.mark.parametrize("hyperparameters, message", [
    ({"num_gmaes": 64}, "unknown hyperparameter 'num_gmaes'"),
    ({"no_export": "yes"}, "'no_export' is a switch"),
    ({"lr": [1, 2]}, "'lr' takes one value"),
    ({"rl.lr": 0.1}, "dotted RLlib settings look like"),
    ({"rl.training.stop.training_iteration": "many"}, "cannot use 'many'"),
])
def test_a_bad_hyperparameter_is_refused_naming_it(hyperparameters: dict, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        to_argv(hyperparameters, parser())


def test_a_value_of_the_wrong_type_is_refused_by_the_flag_it_names() -> None:
    with pytest.raises(argparse.ArgumentError, match="--lr.*invalid float value: 'fast'"):
        parser().parse_args(to_argv({"lr": "fast"}, parser()))


# ---------------------------------------------------------------- checkpoints and stop signals


def test_checkpoints_are_committed_whole_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=2)
    assert store.newest() is None
    for iteration in (5, 10, 15):
        store.save(iteration, lambda folder, i=iteration: (folder.mkdir(), (folder / "state").write_text(str(i))))
    assert [i for i, _ in store.checkpoints()] == [10, 15]
    assert (store.newest() / "state").read_text() == "15"

    def crash(folder: Path) -> None:
        folder.mkdir()
        (folder / "state").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.save(20, crash)
    assert store.newest().name == "iteration-000015"  # the torn save is never taken for a checkpoint
    assert (store.newest() / "MANIFEST.json").is_file()


def write_state(files: dict[str, str]):
    """A checkpoint writer: these files (relative path -> text) in the folder."""
    def write(folder: Path) -> None:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    return write


def test_a_torn_upload_is_passed_over_for_the_newest_complete_checkpoint_and_cleaned_away(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=3)
    for iteration in (10, 20):
        store.save(iteration, write_state({"algorithm_state.pkl": f"it{iteration}", "learner/module.pt": "w" * 100}))
    # What an interrupted S3 sync brings back: the newest folder without some of its files...
    (store.folder / "iteration-000020" / "learner" / "module.pt").unlink()
    # ... a folder whose manifest never arrived, and a save that was cut short.
    (store.folder / "iteration-000030").mkdir()
    (store.folder / "iteration-000030" / "algorithm_state.pkl").write_text("it30")
    (store.folder / "iteration-000040.partial").mkdir()
    assert store.newest().name == "iteration-000010"
    assert [i for i, _ in store.checkpoints()] == [10]
    assert {item.path.name: item.reason for item in store.incomplete()} == {
        "iteration-000020": "learner/module.pt is missing (2 files listed)",
        "iteration-000030": "no MANIFEST.json (an unfinished upload, or not written by this store)"}
    assert store.clean() == ["iteration-000040.partial: an unfinished save",
                             "iteration-000020: learner/module.pt is missing (2 files listed)",
                             "iteration-000030: no MANIFEST.json (an unfinished upload, or not written by this store)"]
    assert sorted(p.name for p in store.folder.iterdir()) == ["iteration-000010"]


def test_a_checkpoint_whose_file_changed_is_not_resumed_from(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=2)
    store.save(1, write_state({"state.pkl": "one"}))
    store.save(2, write_state({"state.pkl": "two"}))
    (store.folder / "iteration-000002" / "state.pkl").write_text("tw0")  # same size, other bytes
    assert store.newest().name == "iteration-000001"
    (store.folder / "iteration-000002" / "state.pkl").write_text("twelve")
    assert [i for i, _ in store.checkpoints()] == [1]


def test_a_save_prunes_older_and_stale_folders_but_keeps_the_newest_complete_ones(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt", keep=2)
    for iteration in (1, 2):
        store.save(iteration, write_state({"state": str(iteration)}))
    (store.folder / "iteration-000009").mkdir()  # stale: from before a restart that resumed at 2
    store.save(3, write_state({"state": "3"}))
    assert sorted(p.name for p in store.folder.iterdir()) == ["iteration-000002", "iteration-000003"]


def test_a_relative_checkpoint_folder_is_made_absolute_for_rllib() -> None:
    assert CheckpointStore("runs/local/checkpoints").folder == Path.cwd() / "runs" / "local" / "checkpoints"


def test_sigterm_becomes_a_stop_request_and_restore_puts_the_old_handler_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = StopSignal()
    try:
        assert stop.requested is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"  # the process is still alive to save its checkpoint
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_sigterm_is_ignored_and_the_handler_can_be_taken_back_from_a_library(
        capsys: pytest.CaptureFixture) -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = StopSignal()
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(15))  # what ray.init does
        stop.install()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # docker-compose stopping the job after SageMaker's own SIGTERM
        assert stop.requested == "SIGTERM"
        assert "SIGTERM received again: already stopping" in capsys.readouterr().err
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) is before  # the handler from before the first install, not Ray's
