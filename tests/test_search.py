"""The network search: paranoid backup, traps and head-to-heads it sees, budgets, rulesets, and what it refuses."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ascii_boards import board
from server_helpers import exported_model

from battlesnake_gym.engine import Games, GameSettings, board_from_json
from battlesnake_gym.observations import EgocentricEncoder
from battlesnake_policy import ModelError, load_model
from battlesnake_server.search import LOSS, NetworkSearch, SearchSettings, _Level

UP, DOWN, LEFT, RIGHT = range(4)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(exported_model(tmp_path_factory.getbasetemp()), num_threads=1)


def games_from(board_json: dict, ruleset: str = "standard") -> Games:
    settings = GameSettings(width=board_json["width"], height=board_json["height"], ruleset=ruleset)
    state, _ = board_from_json(board_json, wrapped=settings.rules.wrapped)
    return Games.from_state(settings, state)


def test_the_backup_takes_my_best_move_against_the_worst_reply() -> None:
    # Root: my moves up and left; replies a and b. up: (0.5, -0.2) -> -0.2; left: (0.1, 0.3) -> 0.1.
    dummy = np.zeros((1, 1, 4))
    root = _Level(None, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1), np.zeros(1, bool), dummy, dummy)
    children = _Level(None, np.zeros(4, np.int64), np.array([UP, UP, LEFT, LEFT]), np.array([0.5, -0.2, 0.1, 0.3]),
                      np.zeros(4, bool), np.zeros((4, 1, 4)), np.zeros((4, 1, 4)))
    values = NetworkSearch._backup([root, children])[0]
    assert values[UP] == pytest.approx(-0.2) and values[LEFT] == pytest.approx(0.1)
    assert np.isnan(values[DOWN]) and np.isnan(values[RIGHT])
    # One level deeper, under the second child (up, reply b) only: there my up meets two replies (0.9, 0.7) and my
    # down one (0.8), so that child is worth max(min(0.9, 0.7), 0.8) = 0.8, and up becomes min(0.5, 0.8) = 0.5.
    grand = _Level(None, np.array([1, 1, 1]), np.array([UP, UP, DOWN]), np.array([0.9, 0.7, 0.8]),
                   np.zeros(3, bool), np.zeros((3, 1, 4)), np.zeros((3, 1, 4)))
    values = NetworkSearch._backup([root, children, grand])[0]
    assert values[UP] == pytest.approx(0.5) and values[LEFT] == pytest.approx(0.1)
    assert children.value[1] == pytest.approx(0.8)  # (the backup writes into what it is given: the search copies)


def test_the_search_does_not_walk_into_a_head_to_head_it_would_lose(model) -> None:
    # a (3 long) at (4, 1) next to b's longer head (3, 2): up is b's neck, right a's own; left (3, 1) is a cell b's
    # head can take too (a loses that head-to-head); down is free.
    games = games_from(board("""
        . . . . . . .
        . . . . . . .
        . . . . . . .
        . . . . . . .
        . . . B b b b
        . . . . A a a
        . . . . . . .
    """))
    for weight in (1.0, 0.0):  # the territory score, or the (untrained) network's value alone
        search = NetworkSearch(model.policy, SearchSettings(max_nodes=400, territory_weight=weight))
        result = search.choose(games, 0, EgocentricEncoder(view=21))
        assert result.depth >= 2 and result.move == DOWN
        assert result.values[LEFT] <= LOSS + 0.01
        assert np.isnan(result.values[UP]) and np.isnan(result.values[RIGHT])  # certain deaths are not tried


def test_a_node_budget_makes_the_search_repeatable(model) -> None:
    games = Games(GameSettings(), num_snakes=4, seed=11)
    search = NetworkSearch(model.policy, SearchSettings(max_nodes=300, territory_weight=0.5))
    first, second = (search.choose(games, 2, EgocentricEncoder(view=21)) for _ in range(2))
    assert first.move == second.move and first.nodes == second.nodes <= 300
    np.testing.assert_array_equal(first.values, second.values)


@pytest.mark.parametrize("ruleset", ["standard", "wrapped", "constrictor", "royale"])
def test_the_search_plays_every_ruleset_with_two_to_eight_snakes(model, ruleset: str) -> None:
    for snakes in (2, 8):
        games = Games(GameSettings(width=11, height=11, ruleset=ruleset), num_snakes=snakes, seed=snakes)
        result = NetworkSearch(model.policy, SearchSettings(max_nodes=200)).choose(games, snakes - 1,
                                                                                   EgocentricEncoder(view=21))
        assert 0 <= result.move < 4 and result.depth >= 1 and result.nodes <= 200


class SlowPolicy:
    """The tiny model, 40 ms slower per forward pass."""

    def __init__(self, policy):
        self.policy, self.has_value, self.path = policy, True, "slow"

    def evaluate(self, obs, mask):
        time.sleep(0.04)
        return self.policy.evaluate(obs, mask)


def test_the_search_stops_growing_at_its_deadline(model) -> None:
    games = Games(GameSettings(), num_snakes=2, seed=5)
    search = NetworkSearch(SlowPolicy(model.policy), SearchSettings())
    started = time.perf_counter()
    result = search.choose(games, 0, EgocentricEncoder(view=21), deadline=started + 0.15)
    # the root, then levels only while the next one is expected to fit; one forward pass may run past
    assert result.depth >= 1 and time.perf_counter() - started < 0.15 + 0.08


def test_a_model_without_a_value_output_cannot_drive_a_search(model) -> None:
    class NoValue:
        has_value, path = False, Path("old/policy.pt")

    with pytest.raises(ModelError, match="old/policy.pt has no value output"):
        NetworkSearch(NoValue())


@pytest.mark.parametrize(("settings", "message"), [
    ({"top_k": 0}, "top_k must be a positive integer"),
    ({"top_k": 5}, "top_k must be at most 4"),
    ({"radius": -1}, "radius must be an integer >= 0"),
    ({"territory_weight": 1.5}, r"territory_weight must lie in \[0, 1\]"),
    ({"max_nodes": 0}, "max_nodes must be a positive integer"),
])
def test_bad_search_settings_are_refused_naming_them(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchSettings(**settings)


# ---- in the server --------------------------------------------------------------------------------------------------


def _move_body(games: Games, you: int = 0, timeout: int = 500) -> dict:
    from battlesnake_gym.engine import api_board

    ids = [f"snake-{i}" for i in range(games.num_snakes)]
    board_json = api_board(games.state, games.settings, ids)
    return {"game": {"id": "g1", "ruleset": {"name": "standard", "settings": games.settings.to_api()},
                     "map": "standard", "timeout": timeout}, "turn": int(games.state.turn[0]), "board": board_json,
            "you": board_json["snakes"][you]}


def test_the_server_answers_with_the_network_search_within_the_move_deadline(model, tmp_path_factory) -> None:
    import json

    from battlesnake_server.app import SnakeApp
    from battlesnake_server.players import load_model as load_player

    player = load_player(exported_model(tmp_path_factory.getbasetemp()))
    app = SnakeApp(player, search=NetworkSearch(player.policy, SearchSettings()), search_ms=60)
    games = Games(GameSettings(), num_snakes=2, seed=4)
    started = time.perf_counter()
    status, reply = app.handle("POST", "/move", json.dumps(_move_body(games)).encode())
    assert status == 200 and reply["move"] in ("up", "down", "left", "right")
    assert app.counters["searched_moves"] == 1 and time.perf_counter() - started < 0.4


def test_serve_refuses_a_search_it_cannot_run_before_any_game(tmp_path_factory, tmp_path: Path) -> None:
    from battlesnake_server.serve import build_app, parser

    folder = exported_model(tmp_path_factory.getbasetemp())
    app = build_app(parser().parse_args(["--model", str(folder)]))
    assert app.search is not None  # auto: the model has a value output
    with pytest.raises(ValueError, match="--search-ms 450 is longer than the arena's 500 ms move timeout"):
        build_app(parser().parse_args(["--model", str(folder), "--search-ms", "450"]))
    with pytest.raises(ValueError, match="--search network needs a --model"):
        build_app(parser().parse_args(["--search", "network"]))
    with pytest.raises(ValueError, match=r"territory_weight must lie in \[0, 1\]"):
        build_app(parser().parse_args(["--model", str(folder), "--territory-weight", "2"]))


def test_many_searches_grown_together_answer_as_each_would_alone(model) -> None:
    games = Games(GameSettings(), num_snakes=2, batch_size=6, seed=8)
    me = np.array([0, 1, 0, 1, 0, 1])
    search = NetworkSearch(model.policy, SearchSettings(max_nodes=150, max_depth=2))
    together = search.choose_many(games, me, EgocentricEncoder(view=21))
    from battlesnake_gym.engine.state import select_games

    for i, result in enumerate(together):
        alone = search.choose(Games(games.settings, _state=select_games(games.state, i)), int(me[i]),
                              EgocentricEncoder(view=21))
        assert (result.move, result.depth) == (alone.move, alone.depth)
        np.testing.assert_allclose(result.values, alone.values, rtol=1e-5)


def test_evaluate_measures_the_search_in_process(tmp_path_factory, capsys) -> None:
    import json

    from battlesnake_server.evaluate import main

    folder = exported_model(tmp_path_factory.getbasetemp())
    assert main(["--model", str(folder), "--opponents", "safe", "--modes", "1v1", "--games", "4",
                 "--search-nodes", "40", "--max-turns", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["results"][0]["games"] == 4 and report["search"]["max_nodes"] == 40
    assert 1 <= report["search"]["mean_depth"] and report["search"]["mean_nodes"] <= 40
    assert main(["--model", str(folder), "--search-nodes", "-1"]) == 2
    assert "--search-nodes must be >= 0" in capsys.readouterr().err
