"""The battlesnake-rl command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from battlesnake_gym import conformance


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "battlesnake_rl.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_help_lists_every_command() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for name in ("demo", "conformance", "benchmark", "replay", "train", "evaluate"):
        assert f"  {name}" in result.stdout


def test_an_unknown_command_is_named_in_the_error() -> None:
    result = _cli("fly")
    assert result.returncode == 2
    assert "unknown command 'fly'" in result.stderr


def test_demo_plays_a_game_to_its_end_and_exports_a_replayable_game(tmp_path: Path) -> None:
    export = tmp_path / "game.jsonl"
    result = _cli("demo", "--seed", "3", "--every", "1000", "--export", str(export))
    assert result.returncode == 0, result.stderr
    assert "winner:" in result.stdout
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[0]["ruleset"]["name"] == "standard"
    assert "winnerId" in lines[-1]
    report = conformance.run([export])
    assert report.failed == 0 and report.passed == len(lines) - 3


def test_demo_rejects_an_unknown_ruleset_by_name() -> None:
    result = _cli("demo", "--ruleset", "chess")
    assert result.returncode != 0
    assert "unknown ruleset 'chess'" in result.stderr


def test_benchmark_json_reports_both_configurations() -> None:
    result = _cli("benchmark", "--json", "--seconds", "0.2", "--batch", "16", "--no-pin")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["single_game"]["batch_size"] == 1 and report["batched"]["batch_size"] == 16
    assert report["env_batched"]["obs_shape"] == [10, 21, 21]
    for run in (report["single_game"], report["batched"], report["env_batched"]):
        assert run["env_steps"] > 0 and run["env_steps_per_s"] > 0


def test_conformance_exits_1_and_prints_the_closing_line_on_a_failure(tmp_path: Path) -> None:
    board = {"width": 7, "height": 7, "food": [], "hazards": [], "snakes": [
        {"id": "a", "health": 50, "body": [{"x": 1, "y": 1}, {"x": 1, "y": 0}], "eliminated": None},
        {"id": "b", "health": 50, "body": [{"x": 5, "y": 5}, {"x": 5, "y": 4}], "eliminated": None}]}
    after = json.loads(json.dumps(board))
    after["snakes"][0].update(health=49, body=[{"x": 1, "y": 2}, {"x": 1, "y": 1}])
    after["snakes"][1].update(health=49, body=[{"x": 5, "y": 6}, {"x": 5, "y": 5}])
    case = {"kind": "step", "case": "hand:t0", "ruleset": "standard", "map": "empty", "settings": {}, "turn": 0,
            "before": board, "moves": {"a": "up", "b": "up"}, "after": after, "game_over": False,
            "spawned": {"food": [], "hazards": []}}
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(case) + "\n")
    result = _cli("conformance", str(good))
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "1 passed, 0 failed"
    case["moves"]["a"] = "right"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(case) + "\n")
    result = _cli("conformance", str(bad))
    assert result.returncode == 1
    assert "FAIL bad.jsonl hand:t0" in result.stdout and result.stdout.splitlines()[-1] == "0 passed, 1 failed"


def test_evaluate_names_a_missing_or_invalid_model_file(tmp_path: Path) -> None:
    result = _cli("evaluate", "--model", str(tmp_path / "none.pt"))
    assert result.returncode == 2 and f"no policy file at {tmp_path / 'none.pt'}" in result.stderr
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    result = _cli("evaluate", "--model", str(bad))
    assert result.returncode == 2 and f"{bad} is not a policy file" in result.stderr


def test_train_refuses_an_unknown_algorithm_before_making_a_run_folder(tmp_path: Path) -> None:
    result = _cli("train", "--algorithm", "APEX", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "unknown algorithm 'APEX'; known: PPO, APPO, IMPALA, DQN" in result.stderr
    assert not (tmp_path / "run").exists()
