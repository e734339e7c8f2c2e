"""Properties of the engine that hold for every ruleset, map, board size, setting and move sequence (hypothesis).

Each test plays random games (mostly safe moves, sometimes random ones and invalid move strings) and checks one
invariant after every step. Games are batches of up to three, stepped with a random mask, so finished games, games
left out of a step and the game-over stage are all exercised. The games are played by ``property_games``; the
properties of batches and seeds are in test_batch_properties.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_games import (
    PROPERTY,
    Case,
    assert_same_game,
    batch_moves,
    cases,
    changed_games,
    game_settings,
    live_cells,
    new_games,
    play,
)

from battlesnake_gym.engine import CAUSE_NAMES, Games, GameSettings, board_from_json, board_to_json

# ---------------------------------------------------------------- invariants


@PROPERTY
@given(cases())
def test_health_stays_between_0_and_100_and_live_snakes_keep_at_least_1(case: Case) -> None:
    for step in play(case):
        for state in (step.pipeline, step.after):
            assert ((state.health >= 0) & (state.health <= 100)).all(), state.health
            alive = state.elim_cause == 0
            assert (state.health[alive] >= 1).all(), (state.health, state.elim_cause)


@PROPERTY
@given(cases())
def test_a_snake_grows_only_by_the_food_it_eats_or_by_constriction(case: Case) -> None:
    constrictor = case.game_settings.rules.constrictor
    for step in play(case):
        before, pipeline = step.before, step.pipeline
        np.testing.assert_array_equal(step.after.length, pipeline.length)  # the map never touches snakes
        for b in range(before.batch_size):
            if b not in set(changed_games(step)):
                np.testing.assert_array_equal(pipeline.length[b], before.length[b])
                continue
            food = [(int(x), int(y)) for x, y in before.food[b, : before.food_count[b]]]
            for s in range(before.num_snakes):
                n = int(before.length[b, s])
                old_body = live_cells(before, b, s)
                if before.elim_cause[b, s] == 0:
                    head = tuple(int(v) for v in pipeline.body[b, s, 0])
                    eaten = food.count(head)
                    moved = [head, *old_body[:-1]]
                    # The moved body is the new head followed by the old body minus its tail segment.
                    assert live_cells(pipeline, b, s)[:n] == moved, (s, old_body, live_cells(pipeline, b, s))
                else:
                    eaten, moved = 0, old_body
                grows = constrictor and eaten == 0 and (n < 2 or moved[-1] != moved[-2])
                assert pipeline.length[b, s] == n + eaten + int(grows), (s, n, eaten, grows, pipeline.length[b, s])
                # Growth duplicates the tail segment.
                assert set(live_cells(pipeline, b, s)[n:]) <= {moved[-1]}


@PROPERTY
@given(cases())
def test_the_food_count_falls_by_the_food_eaten_and_new_food_is_appended(case: Case) -> None:
    constrictor = case.game_settings.rules.constrictor
    spawns = "spawn_food.standard" in case.game_settings.game_map.post_update
    for step in play(case):
        before, pipeline, after = step.before, step.pipeline, step.after
        changed = set(changed_games(step))
        for b in range(before.batch_size):
            food = [(int(x), int(y)) for x, y in before.food[b, : before.food_count[b]]]
            left = [(int(x), int(y)) for x, y in pipeline.food[b, : pipeline.food_count[b]]]
            if b not in changed:
                assert left == food
            elif constrictor:
                assert left == []
            else:
                heads = {tuple(int(v) for v in pipeline.body[b, s, 0])
                         for s in range(before.num_snakes) if before.elim_cause[b, s] == 0}
                assert left == [p for p in food if p not in heads]
            final = [(int(x), int(y)) for x, y in after.food[b, : after.food_count[b]]]
            assert final[: len(left)] == left, "the post-update keeps existing food, in order"
            if not (spawns and step.stepped[b]):
                assert final == left


@PROPERTY
@given(cases())
def test_no_two_live_snakes_share_a_cell_after_a_step(case: Case) -> None:
    for step in play(case):
        state = step.after
        for b in range(state.batch_size):
            seen: dict[tuple[int, int], int] = {}
            for s in np.flatnonzero(state.elim_cause[b] == 0):
                for cell in set(live_cells(state, b, s)):
                    assert cell not in seen, f"game {b}: snakes {seen.get(cell)} and {s} both on {cell}"
                    seen[cell] = int(s)


@PROPERTY
@given(cases())
def test_food_is_never_under_a_live_snake_after_a_full_step(case: Case) -> None:
    for step in play(case):
        state = step.after
        for b in range(state.batch_size):
            food = {(int(x), int(y)) for x, y in state.food[b, : state.food_count[b]]}
            for s in np.flatnonzero(state.elim_cause[b] == 0):
                under = food & set(live_cells(state, b, s))
                assert not under, f"game {b}: food {under} under live snake {s}"


@PROPERTY
@given(cases())
def test_live_snakes_food_and_hazards_stay_on_the_board_and_bodies_stay_contiguous(case: Case) -> None:
    width, height = case.game_settings.width, case.game_settings.height
    wrapped = case.game_settings.rules.wrapped
    for step in play(case):
        state = step.after
        for b in range(state.batch_size):
            points = [*state.food[b, : state.food_count[b]], *state.hazards[b, : state.hazard_count[b]]]
            for s in np.flatnonzero(state.elim_cause[b] == 0):
                body = live_cells(state, b, s)
                points += body
                for (ax, ay), (bx, by) in zip(body, body[1:]):
                    dx, dy = abs(ax - bx), abs(ay - by)
                    if wrapped:
                        dx, dy = min(dx, width - dx), min(dy, height - dy)
                    assert dx + dy <= 1, f"game {b}: snake {s} body {body} is not contiguous"
            for x, y in points:
                assert 0 <= x < width and 0 <= y < height, f"game {b}: ({x}, {y}) is off the board"


@PROPERTY
@given(cases())
def test_eliminated_snakes_never_come_back_and_keep_their_cause_by_and_turn(case: Case) -> None:
    constrictor = case.game_settings.rules.constrictor
    for step in play(case):
        before, after = step.before, step.after
        gone = before.elim_cause != 0
        assert (after.elim_cause[gone] != 0).all()
        for field in ("elim_cause", "elim_by", "elim_turn"):
            np.testing.assert_array_equal(getattr(after, field)[gone], getattr(before, field)[gone], err_msg=field)
        if not constrictor:  # constrictor tops up every snake's health and tail, eliminated or not
            np.testing.assert_array_equal(after.length[gone], before.length[gone])
            np.testing.assert_array_equal(after.health[gone], before.health[gone])
            for b, s in zip(*np.nonzero(gone)):
                assert live_cells(after, b, s) == live_cells(before, b, s)


@PROPERTY
@given(cases())
def test_a_new_elimination_records_the_next_turn_and_a_plausible_culprit(case: Case) -> None:
    for step in play(case):
        before, after = step.before, step.after
        new = (before.elim_cause == 0) & (after.elim_cause != 0)
        for b, s in zip(*np.nonzero(new)):
            cause, by = CAUSE_NAMES[after.elim_cause[b, s]], int(after.elim_by[b, s])
            assert after.elim_turn[b, s] == before.turn[b] + 1
            if cause in ("out-of-health", "wall-collision", "hazard"):
                assert by == -1, (cause, by)
            elif cause == "snake-self-collision":
                assert by == s
            else:
                assert 0 <= by < before.num_snakes and by != s, (cause, by)


@PROPERTY
@given(cases())
def test_games_left_out_of_a_step_are_untouched_and_the_others_advance_one_turn(case: Case) -> None:
    for step in play(case):
        for b in np.flatnonzero(~step.stepped):
            assert_same_game(step.after, b, step.before, b, case.game_settings)
        np.testing.assert_array_equal(step.after.turn[step.stepped], step.before.turn[step.stepped] + 1)


@PROPERTY
@given(cases())
def test_a_step_reports_over_exactly_for_finished_games_and_leaves_their_snakes_as_they_were(case: Case) -> None:
    for step in play(case):
        np.testing.assert_array_equal(step.over, step.finished & step.stepped)
        for b in np.flatnonzero(step.over):
            assert_same_game(step.pipeline, b, step.before, b, case.game_settings)


@PROPERTY
@given(cases(max_games=1))
def test_a_step_split_at_the_post_update_equals_a_whole_step(case: Case) -> None:
    whole, split = new_games(case), new_games(case)
    rng = np.random.default_rng(case.move_seed)
    for _ in range(case.turns):
        if whole.finished().all():
            break
        moves = batch_moves(whole, case, rng)
        over = whole.step(moves)
        np.testing.assert_array_equal(split.step(moves, post_update=False), over)
        split.finish_turn()
        assert_same_game(whole.state, 0, split.state, 0, case.game_settings)


@PROPERTY
@given(cases())
def test_every_board_survives_a_json_round_trip(case: Case) -> None:
    g = case.game_settings
    for step in play(case):
        for b in range(step.after.batch_size):
            expected = board_to_json(step.after, g.width, g.height, game=b)
            state, ids = board_from_json(expected, turn=int(step.after.turn[b]), wrapped=g.rules.wrapped)
            assert board_to_json(state, g.width, g.height, ids) == expected
            assert state.turn[0] == step.after.turn[b]


@settings(max_examples=40, deadline=None)
@given(game_settings(), st.data())
def test_every_starting_board_has_full_health_stacked_snakes_on_distinct_free_cells(
        game: GameSettings, data: st.DataObject) -> None:
    num_snakes = data.draw(st.integers(1, game.max_snakes()))
    games = Games(game, num_snakes=num_snakes, batch_size=4, seed=data.draw(st.integers(0, 2**32)))
    state = games.state
    assert (state.turn == 0).all() and (state.elim_cause == 0).all()
    assert (state.health == 100).all() and (state.length == 3).all()
    for b in range(games.batch_size):
        starts = [live_cells(state, b, s) for s in range(num_snakes)]
        assert all(len(set(cells)) == 1 for cells in starts), starts
        heads = {cells[0] for cells in starts}
        assert len(heads) == num_snakes, starts
        food = [(int(x), int(y)) for x, y in state.food[b, : state.food_count[b]]]
        assert len(set(food)) == len(food) and not heads & set(food), (starts, food)
        if game.rules.constrictor or game.map == "empty":
            assert food == []
        assert state.hazard_count[b] == 0


# ---------------------------------------------------------------- regressions: engine bugs these properties found


@pytest.mark.parametrize("game_map", ["standard", "empty", "sinkholes"])
def test_the_royale_ruleset_has_room_for_a_whole_board_of_hazards_on_any_map(game_map: str) -> None:
    # Checked on the allocation: before the fix, stepping such a game wrote past the array and crashed the process.
    game = GameSettings(ruleset="royale", map=game_map, shrink_every_n_turns=1)
    games = Games(game, num_snakes=2, seed=0)
    scheduled = len(game.game_map.schedule_arrays(game)[2])
    assert games.state.hazards.shape[1] >= game.width * game.height + scheduled


def _point(x: int, y: int) -> dict[str, int]:
    return {"x": x, "y": y}


def test_a_collision_with_a_snake_in_slot_128_credits_that_snake() -> None:
    # Non-square boards allow hundreds of snakes (GameSettings.max_snakes), so slot 128 is reachable.
    width, height = 60, 41
    snakes = [{"id": "s0", "health": 100, "body": [_point(0, 2), _point(0, 1), _point(0, 0)]}]
    for i in range(1, 128):  # out of the way, all heading up into free cells
        x, y = 10 + i % 40, 10 + (i // 40) * 4
        snakes.append({"id": f"s{i}", "health": 100, "body": [_point(x, y + 2), _point(x, y + 1), _point(x, y)]})
    snakes.append({"id": "s128", "health": 100, "body": [_point(1, 3), _point(0, 3), _point(0, 4)]})
    state, ids = board_from_json({"width": width, "height": height, "food": [], "hazards": [], "snakes": snakes})
    game = GameSettings(width=width, height=height, food_spawn_chance=0, minimum_food=0)
    assert game.max_snakes() > len(ids)
    games = Games.from_state(game, state)
    moves = np.zeros((1, len(ids)), np.int8)  # everyone up; s0's head goes to (0, 3)
    moves[0, 128] = 3  # s128 right: its body becomes (2, 3), (1, 3), (0, 3)
    games.step(moves)
    s0 = board_to_json(games.state, width, height, ids)["snakes"][0]
    assert s0["eliminated"] == {"cause": "snake-collision", "by": "s128", "turn": 1}
