"""The arena server's players and deadlines: the exported model (its config, encoder plan, slots and view), and
moves that are abandoned at the deadline for the fallback.
"""

from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from server_helpers import (
    NO_SEARCH,
    TINY_CONFIG,
    FixedPolicy,
    SleepyPolicy,
    assert_not_avoidably_fatal,
    patient,
    recorded_frames,
    set_field,
    valid_body,
)

from battlesnake_gym.engine import MOVE_NAMES, GameSettings
from battlesnake_gym.observations import EgocentricEncoder, action_mask, make_encoder
from battlesnake_server.app import SnakeApp
from battlesnake_server.players import ModelError, ModelPlayer, load_model
from battlesnake_server.request import parse_move
from battlesnake_server.safety import SafetyLayer
from battlesnake_server.search import NetworkSearch

# ---------------------------------------------------------------- players: the exported model


def test_the_model_finds_its_config_beside_it_or_in_the_run_folder(model_dir: Path, tmp_path: Path) -> None:
    assert load_model(model_dir).source == str(model_dir / "config.json")
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "policy.pt").write_bytes((model_dir / "policy.pt").read_bytes())
    (run / "config.json").write_text(json.dumps(TINY_CONFIG))
    player = load_model(run)  # the run folder: model/policy.pt and config.json
    assert player.source == str(run / "config.json") and player.obs_shape == (10, 21, 21)


def test_without_a_config_an_egocentric_window_is_read_from_the_shape(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "policy.onnx").write_bytes((model_dir / "policy.onnx").read_bytes())
    player = load_model(tmp_path / "policy.onnx")
    assert player.spec.view == 21 and player.window == 21 and player.policy.format == "onnx"


def test_a_config_that_does_not_match_the_model_is_refused_naming_both_shapes(model_dir: Path,
                                                                              tmp_path: Path) -> None:
    (tmp_path / "wrong.json").write_text(json.dumps({**TINY_CONFIG, "view": 11}))
    with pytest.raises(ModelError, match=r"\(10, 21, 21\).*\(10, 11, 11\)"):
        load_model(model_dir / "policy.pt", tmp_path / "wrong.json")
    (tmp_path / "bad.json").write_text(json.dumps({**TINY_CONFIG, "encoder": "pixels"}))
    with pytest.raises(ModelError, match="pixels"):
        load_model(model_dir / "policy.pt", tmp_path / "bad.json")
    with pytest.raises(ModelError, match="no model"):
        load_model(tmp_path / "missing")


def test_the_model_sees_the_trained_encoder_on_its_board_and_a_centred_window_elsewhere() -> None:
    player = ModelPlayer(FixedPolicy((10, 21, 21)), TINY_CONFIG)
    assert player.plan(GameSettings(), 4).note == "trained"
    for size in (7, 19, 25):
        plan = player.plan(GameSettings(width=size, height=size), 16 if size == 25 else 4)
        assert plan.note == "window" and plan.encoder.shape(GameSettings(width=size, height=size), 4) == (10, 21, 21)


def test_a_model_whose_encoder_cannot_follow_the_board_leaves_the_game_to_the_bot(shared: Path) -> None:
    legacy = {**TINY_CONFIG, "encoder": "bordered-51s"}
    player = ModelPlayer(FixedPolicy((13, 13, 5)), legacy)
    assert player.plan(GameSettings(), 4).note == "trained"
    plan = player.plan(GameSettings(width=19, height=19), 4)
    assert plan.encoder is None and "(13, 13, 5)" in plan.note
    app = SnakeApp(player, safety=NO_SEARCH)
    frame = recorded_frames("cli-export-standard-4snakes.jsonl")[5]
    big = patient(copy.deepcopy(frame))
    big["board"].update(width=19, height=19)
    status, reply = app.handle("POST", "/move", json.dumps(big).encode())
    assert status == 200 and app.counters["bot_moves"] == 1 and not player.policy.seen


def test_a_legacy_model_keeps_its_snake_slots_after_snakes_die(shared: Path) -> None:
    policy = FixedPolicy((13, 13, 5))
    app = SnakeApp(ModelPlayer(policy, {**TINY_CONFIG, "encoder": "bordered-51s"}), safety=NO_SEARCH)
    frames = recorded_frames("cli-export-standard-4snakes.jsonl")
    you = frames[0]["board"]["snakes"][0]
    app.handle("POST", "/start", json.dumps({**frames[0], "you": you}).encode())
    late = frames[-2]  # three snakes left
    assert len(late["board"]["snakes"]) == 3
    status, _ = app.handle("POST", "/move", json.dumps(patient({**late, "you": you})).encode())
    assert status == 200 and app.counters["bot_moves"] == 0 and policy.seen[-1].shape == (1, 13, 13, 5)


def test_the_model_player_feeds_the_policy_its_encoder_view_and_the_mask(shared: Path, model_dir: Path) -> None:
    player = load_model(model_dir)
    frame = recorded_frames("cli-export-standard-4snakes.jsonl")[12]
    req = parse_move({**frame, "you": frame["board"]["snakes"][1]})
    prefs = player.preferences(req.games, req.you, player.plan(req.settings, 4))
    obs = make_encoder("egocentric").encode(req.games)[0, req.you]
    logits = player.policy.logits(obs, action_mask(req.games)[0, req.you][None])[0]
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(prefs, expected / expected.sum(), rtol=1e-5)
    assert isinstance(player.plan(req.settings, 4).encoder, EgocentricEncoder)


# ---------------------------------------------------------------- deadlines


def _timed_move(app: SnakeApp, body: dict) -> tuple[str, float]:
    """(the move, seconds from the request's arrival to the reply), once the kernels that read a board and pick the
    fallback are loaded (numba's cache), as the server's warm-up does before the first game."""
    req = parse_move(body)
    SafetyLayer().choose(req.games, req.you, np.full(4, 0.25))
    received = time.perf_counter()
    reply = app.move(body, received)
    return reply["move"], time.perf_counter() - received


def test_a_model_slower_than_the_deadline_is_abandoned_and_the_fallback_sent_in_time(shared: Path) -> None:
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 2.0), TINY_CONFIG), safety=NO_SEARCH)
    body = set_field(valid_body(), "game.timeout", 300)  # deadline: 300 - 100 ms margin after arrival
    move, seconds = _timed_move(app, body)
    assert seconds < 0.3 and app.counters["deadline_moves"] == 1 and app.counters["moves"] == 1
    assert_not_avoidably_fatal(body, move)  # the safety layer's own pick


def test_a_search_slower_than_the_deadline_leaves_the_move_to_the_safety_layer_in_time(shared: Path) -> None:
    policy = SleepyPolicy((10, 21, 21), 2.0, sleepy_logits=False)  # quick policy, every search level too slow
    app = SnakeApp(ModelPlayer(policy, TINY_CONFIG), safety=NO_SEARCH, search=NetworkSearch(policy), search_ms=250)
    body = set_field(valid_body(), "game.timeout", 300)
    move, seconds = _timed_move(app, body)
    assert seconds < 0.3 and app.counters["deadline_moves"] == 1 and app.counters["searched_moves"] == 0
    assert len(policy.seen) == 1  # the policy's preferences were in: the layer chose among them
    assert_not_avoidably_fatal(body, move)


def test_work_abandoned_at_the_deadline_does_not_pile_up(shared: Path) -> None:
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 0.5), TINY_CONFIG), safety=NO_SEARCH, workers=2)
    body = set_field(valid_body(), "game.timeout", 250)
    with ThreadPoolExecutor(12) as pool:  # twelve games at once against two workers, each busy for 0.5 s
        timings = list(pool.map(lambda _: _timed_move(app, body), range(12)))
    assert all(seconds < 0.25 for _, seconds in timings)
    assert app.counters["deadline_moves"] == 12
    deadline = time.monotonic() + 10
    while app._queued:  # the waiting moves are dropped as soon as a worker finds them past their deadline
        assert time.monotonic() < deadline, "abandoned moves were still queued"
        time.sleep(0.05)
    assert len(app.model.policy.seen) == 2  # only the two that found a free worker in time were thought about


def test_moves_beyond_the_queue_bound_get_the_fallback_without_waiting(shared: Path, monkeypatch) -> None:
    from battlesnake_server import app as app_module

    monkeypatch.setattr(app_module, "QUEUE_PER_WORKER", 2)
    app = SnakeApp(ModelPlayer(SleepyPolicy((10, 21, 21), 0.5), TINY_CONFIG), safety=NO_SEARCH, workers=2)
    body = set_field(valid_body(), "game.timeout", 250)
    with ThreadPoolExecutor(12) as pool:
        timings = sorted(seconds for _, seconds in pool.map(lambda _: _timed_move(app, body), range(12)))
    assert all(seconds < 0.25 for seconds in timings) and app._queued <= 4
    assert timings[7] < 0.1  # at least eight answered at once, without waiting for the deadline (150 ms)


def test_a_failing_model_is_logged_and_the_bot_proposes(shared: Path) -> None:
    class Broken(FixedPolicy):
        def logits(self, obs, mask):
            raise RuntimeError("the model is broken")

    app = SnakeApp(ModelPlayer(Broken((10, 21, 21)), TINY_CONFIG), safety=NO_SEARCH)
    status, reply = app.handle("POST", "/move", json.dumps(patient(valid_body())).encode())
    assert status == 200 and reply["move"] in MOVE_NAMES
    assert app.counters["errors"] == 1 and app.counters["bot_moves"] == 1 and app.counters["deadline_moves"] == 0
