"""The conformance runner: it passes the official material, and it catches what differs from the official engine."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from battlesnake_gym import conformance
from battlesnake_gym.engine import GameSettings


def _first_case(shared: Path, name: str, predicate=lambda case: True) -> dict:
    for line in (shared / "traces" / name).read_text().splitlines():
        case = json.loads(line)
        if predicate(case):
            return case
    raise AssertionError(f"no matching case in {name}")


def _write(tmp_path: Path, cases: list[dict]) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def test_a_sample_of_every_official_trace_file_passes(shared: Path, tmp_path: Path) -> None:
    sample = []
    for path in sorted((shared / "traces").glob("*.jsonl")):
        sample += [json.loads(line) for line in path.read_text().splitlines()[:40]]
    out = io.StringIO()
    report = conformance.run([_write(tmp_path, sample)], out=out)
    assert report.failed == 0, out.getvalue()
    assert report.passed == len(sample)
    assert out.getvalue().splitlines()[-1] == f"{len(sample)} passed, 0 failed"


def test_every_official_cli_export_replays(shared: Path) -> None:
    out = io.StringIO()
    report = conformance.run([shared / "api-samples"], out=out)
    assert report.failed == 0, out.getvalue()
    assert report.passed > 300


def test_a_wrong_health_in_after_is_reported_with_the_case_id_and_both_boards(shared: Path, tmp_path: Path) -> None:
    case = _first_case(shared, "standard_11x11_4.jsonl")
    case["after"]["snakes"][0]["health"] += 1
    out = io.StringIO()
    report = conformance.run([_write(tmp_path, [case])], out=out)
    text = out.getvalue()
    assert report.failed == 1
    assert case["case"] in text
    assert "health: expected" in text and "expected" in text.splitlines()[3] and "got" in text.splitlines()[3]
    assert text.splitlines()[-1] == "0 passed, 1 failed"


def test_a_wrong_game_over_flag_fails(shared: Path, tmp_path: Path) -> None:
    case = _first_case(shared, "standard_11x11_2.jsonl", lambda c: c["game_over"])
    case["game_over"] = False
    assert conformance.check_step_case(case) == ["game_over: expected False, got True"]


def test_spawned_food_next_to_a_live_head_is_illegal(shared: Path) -> None:
    case = _first_case(shared, "standard_11x11_4.jsonl", lambda c: not c["game_over"])
    head = case["after"]["snakes"][0]["body"][0]
    case["spawned"]["food"].append({"x": head["x"] + 1 if head["x"] < 10 else head["x"] - 1, "y": head["y"]})
    problems = conformance.check_step_case(case)
    assert problems and "next to a live head" in problems[0]


def test_spawned_food_that_reorders_existing_food_is_illegal() -> None:
    settings = GameSettings(width=7, height=7, minimum_food=0, food_spawn_chance=0)
    after = {"food": [{"x": 0, "y": 0}, {"x": 6, "y": 6}], "snakes": []}
    assert conformance.food_spawn_problems(after, list(reversed(after["food"])), settings)
    assert not conformance.food_spawn_problems(after, after["food"], settings)


def test_too_little_food_must_be_topped_up_to_the_minimum() -> None:
    settings = GameSettings(width=7, height=7, minimum_food=3, food_spawn_chance=0)
    after = {"food": [{"x": 0, "y": 0}], "snakes": []}
    one_more = after["food"] + [{"x": 3, "y": 3}]
    assert "expected 2 new food" in conformance.food_spawn_problems(after, one_more, settings)[0]
    assert not conformance.food_spawn_problems(after, one_more + [{"x": 4, "y": 4}], settings)


def test_royale_hazards_must_surround_a_box_that_lost_one_side_per_interval() -> None:
    width = height = 5
    outside_left_column = [(0, y) for y in range(5)]
    assert not conformance.royale_hazard_problems(outside_left_column, width, height, turn=10, every=10)
    assert conformance.royale_hazard_problems(outside_left_column, width, height, turn=20, every=10)
    assert conformance.royale_hazard_problems(outside_left_column[::-1], width, height, turn=10, every=10)
    assert conformance.royale_hazard_problems([(2, 2)], width, height, turn=10, every=10)
    assert conformance.royale_hazard_problems(outside_left_column, width, height, turn=9, every=10)


def test_a_recorded_start_with_a_snake_off_the_official_cells_is_rejected(shared: Path) -> None:
    case = _first_case(shared, "setup.jsonl", lambda c: c["width"] == 11 and len(c["snake_ids"]) == 2)
    bad = copy.deepcopy(case)
    for segment in bad["board"]["snakes"][0]["body"]:
        segment["x"], segment["y"] = 5, 4
    assert not conformance.check_setup_case(case)
    assert any("fixed starts" in p for p in conformance.check_setup_case(bad))


def test_a_replay_whose_snake_jumps_two_cells_fails(shared: Path, tmp_path: Path) -> None:
    lines = (shared / "api-samples" / "cli-export-standard-duel.jsonl").read_text().splitlines()[:4]
    frame = json.loads(lines[2])
    for segment in frame["board"]["snakes"][0]["body"][:1]:
        segment["x"] = (segment["x"] + 2) % 11
    frame["board"]["snakes"][0]["head"] = frame["board"]["snakes"][0]["body"][0]
    lines[2] = json.dumps(frame)
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    report = conformance.run([path], out=out)
    assert report.failed >= 1, out.getvalue()


def test_a_missing_path_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert conformance.main(["/nonexistent/traces"]) == 2
    assert "no such file or folder: /nonexistent/traces" in capsys.readouterr().err
