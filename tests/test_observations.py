"""Observation encoders and the action mask: exact egocentric planes on small pictured boards, and agreement with a
slow reference encoder, the declared spaces and the batch layout over random games (the legacy grids' own tests
are in test_legacy_grids.py)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from encoder_boards import KNOWN, A, B, C, Point, games_from, random_games, snake

from battlesnake_gym.engine import Games, GameSettings
from battlesnake_gym.engine.state import select_games
from battlesnake_gym.observations import (
    EGO_FOOD,
    EGO_HAZARDS,
    EGO_LONGER_HEADS,
    EGO_OFF_BOARD,
    EGO_OTHER_BODIES,
    EGO_OTHER_HEALTH,
    EGO_OWN_BODY,
    EGO_OWN_HEALTH,
    EGO_OWN_LENGTH,
    EGO_SHORTER_HEADS,
    EGOCENTRIC_CHANNELS,
    ENCODERS,
    EgocentricEncoder,
    action_mask,
    make_encoder,
)


def window(cells: dict[Point, int], head: Point, width: int, height: int) -> np.ndarray:
    """The full egocentric plane (2H - 1, 2W - 1) holding ``cells`` (board cells -> values) seen from ``head``."""
    plane = np.zeros((2 * height - 1, 2 * width - 1), np.uint8)
    for (x, y), value in cells.items():
        plane[height - 1 + y - head[1], width - 1 + x - head[0]] = value
    return plane


# ---------------------------------------------------------------------------------------------- slow reference


def reference_egocentric(games: Games, b: int, s: int, view: int | None = None) -> np.ndarray:
    """The egocentric observation of snake s of game b, cell by cell, straight from the docstring's table."""
    st, w, h, wrapped = games.state, games.settings.width, games.settings.height, games.settings.rules.wrapped
    ry, rx = (h - 1, w - 1) if view is None else ((view - 1) // 2,) * 2
    obs = np.zeros((len(EGOCENTRIC_CHANNELS), 2 * ry + 1, 2 * rx + 1), np.int64)
    if st.elim_cause[b, s]:
        return obs.astype(np.uint8)
    own: dict[Point, int] = {}
    other: dict[Point, int] = {}
    longer: set[Point] = set()
    shorter: set[Point] = set()
    other_health: dict[Point, int] = {}
    for o in range(games.num_snakes):
        if st.elim_cause[b, o]:
            continue
        n = int(st.length[b, o])
        body = [tuple(p) for p in st.body[b, o, :n].tolist()]
        target = own if o == s else other
        for i, p in enumerate(body):
            target[p] = max(target.get(p, 0), min(n - i, 255))
        if o != s:
            (longer if n >= st.length[b, s] else shorter).add(body[0])
            other_health[body[0]] = max(other_health.get(body[0], 0), int(st.health[b, o]))
    food = {tuple(p) for p in st.food[b, : st.food_count[b]].tolist()}
    hazards: dict[Point, int] = {}
    for p in st.hazards[b, : st.hazard_count[b]].tolist():
        hazards[tuple(p)] = min(hazards.get(tuple(p), 0) + 1, 255)
    hx, hy = st.body[b, s, 0].tolist()
    obs[EGO_OWN_HEALTH] = st.health[b, s]
    obs[EGO_OWN_LENGTH] = min(int(st.length[b, s]), 255)
    for r in range(2 * ry + 1):
        for c in range(2 * rx + 1):
            x, y = hx + c - rx, hy + r - ry
            if wrapped:
                x, y = x % w, y % h
            elif not (0 <= x < w and 0 <= y < h):
                obs[EGO_OFF_BOARD, r, c] = 1
                continue
            p = (x, y)
            obs[EGO_OWN_BODY, r, c] = own.get(p, 0)
            obs[EGO_OTHER_BODIES, r, c] = other.get(p, 0)
            obs[EGO_LONGER_HEADS, r, c] = p in longer
            obs[EGO_SHORTER_HEADS, r, c] = p in shorter
            obs[EGO_FOOD, r, c] = p in food
            obs[EGO_HAZARDS, r, c] = hazards.get(p, 0)
            obs[EGO_OTHER_HEALTH, r, c] = other_health.get(p, 0)
    return obs.astype(np.uint8)


# ---------------------------------------------------------------------------------------------- egocentric planes


def test_the_egocentric_observation_is_channels_first_and_twice_the_board_minus_one() -> None:
    games = games_from(KNOWN)
    obs = make_encoder("egocentric").encode(games)
    assert obs.shape == (1, 3, 10, 7, 9) and obs.dtype == np.uint8
    assert make_encoder().shape(games.settings, 3) == (10, 7, 9)


def test_own_body_counts_turns_until_each_segment_leaves_and_a_stacked_tail_shows_the_larger() -> None:
    obs = make_encoder("egocentric").encode(games_from(KNOWN))
    expected = window({(1, 2): 4, (2, 2): 3, (3, 2): 2}, head=(1, 2), width=5, height=4)
    np.testing.assert_array_equal(obs[0, A, EGO_OWN_BODY], expected)
    # the head is at the centre of the window
    assert obs[0, A, EGO_OWN_BODY, 3, 4] == 4


def test_other_bodies_use_the_same_numbering_for_every_other_snake() -> None:
    obs = make_encoder("egocentric").encode(games_from(KNOWN))
    expected = window({(2, 0): 4, (3, 0): 3, (3, 1): 2, (4, 1): 1, (0, 3): 2, (1, 3): 1}, head=(1, 2), width=5,
                      height=4)
    np.testing.assert_array_equal(obs[0, A, EGO_OTHER_BODIES], expected)
    expected_for_c = window({(1, 2): 4, (2, 2): 3, (3, 2): 2, (2, 0): 4, (3, 0): 3, (3, 1): 2, (4, 1): 1},
                            head=(0, 3), width=5, height=4)
    np.testing.assert_array_equal(obs[0, C, EGO_OTHER_BODIES], expected_for_c)


def test_heads_of_equal_or_longer_snakes_and_of_shorter_snakes_go_to_separate_planes() -> None:
    obs = make_encoder("egocentric").encode(games_from(KNOWN))
    # a (length 4): b is as long (a head-to-head a loses too), c is shorter
    np.testing.assert_array_equal(obs[0, A, EGO_LONGER_HEADS], window({(2, 0): 1}, (1, 2), 5, 4))
    np.testing.assert_array_equal(obs[0, A, EGO_SHORTER_HEADS], window({(0, 3): 1}, (1, 2), 5, 4))
    # c (length 2): both others are longer
    np.testing.assert_array_equal(obs[0, C, EGO_LONGER_HEADS], window({(1, 2): 1, (2, 0): 1}, (0, 3), 5, 4))
    assert not obs[0, C, EGO_SHORTER_HEADS].any()


def test_food_is_one_and_hazards_count_their_stacked_entries() -> None:
    obs = make_encoder("egocentric").encode(games_from(KNOWN))
    np.testing.assert_array_equal(obs[0, B, EGO_FOOD], window({(2, 3): 1, (1, 0): 1}, (2, 0), 5, 4))
    np.testing.assert_array_equal(obs[0, B, EGO_HAZARDS], window({(0, 0): 1, (4, 2): 2}, (2, 0), 5, 4))


def test_hazard_counts_stop_at_255() -> None:
    many = dict(KNOWN, hazards=[{"x": 4, "y": 3}] * 300)
    obs = make_encoder("egocentric").encode(games_from(many))
    assert obs[0, A, EGO_HAZARDS].max() == 255
    assert obs[0, A, EGO_HAZARDS, 3 + 1, 4 + 3] == 255


def test_the_off_board_plane_marks_every_window_cell_outside_the_board() -> None:
    obs = make_encoder("egocentric").encode(games_from(KNOWN))
    on_board = window({(x, y): 1 for x in range(5) for y in range(4)}, head=(0, 3), width=5, height=4)
    np.testing.assert_array_equal(obs[0, C, EGO_OFF_BOARD], 1 - on_board)
    # c's head is the top-left corner: everything left of it and above it is off the board
    assert obs[0, C, EGO_OFF_BOARD, :, :4].all() and obs[0, C, EGO_OFF_BOARD, 4:, :].all()
    assert obs[0, C, EGO_OFF_BOARD].sum() == 7 * 9 - 5 * 4


def test_own_health_and_length_fill_their_planes_and_other_health_sits_on_their_heads() -> None:
    obs = make_encoder("egocentric").encode(games_from(KNOWN))
    assert (obs[0, A, EGO_OWN_HEALTH] == 90).all() and (obs[0, B, EGO_OWN_HEALTH] == 50).all()
    assert (obs[0, A, EGO_OWN_LENGTH] == 4).all() and (obs[0, C, EGO_OWN_LENGTH] == 2).all()
    np.testing.assert_array_equal(obs[0, A, EGO_OTHER_HEALTH], window({(2, 0): 50, (0, 3): 30}, (1, 2), 5, 4))


def test_the_known_board_matches_the_reference_encoder_for_every_snake() -> None:
    games = games_from(KNOWN)
    obs = make_encoder("egocentric").encode(games)
    for s in range(3):
        np.testing.assert_array_equal(obs[0, s], reference_egocentric(games, 0, s))


def test_a_wrapped_view_wraps_around_the_board_and_has_no_off_board_cells() -> None:
    # a runs across both edges: head (0, 0), then (3, 0) and (3, 2), its left and lower neighbours when wrapped
    wrapped_board = {"width": 4, "height": 3, "food": [{"x": 1, "y": 2}], "hazards": [{"x": 2, "y": 1}] * 2,
                     "snakes": [snake("a", [(0, 0), (3, 0), (3, 2)])]}
    games = games_from(wrapped_board, "wrapped")
    obs = make_encoder("egocentric").encode(games)[0, 0]
    assert obs.shape == (10, 5, 7)
    assert not obs[EGO_OFF_BOARD].any()
    board_planes = {EGO_OWN_BODY: {(0, 0): 3, (3, 0): 2, (3, 2): 1}, EGO_FOOD: {(1, 2): 1}, EGO_HAZARDS: {(2, 1): 2}}
    for channel, cells in board_planes.items():
        for r in range(5):
            for c in range(7):
                x, y = (0 + c - 3) % 4, (0 + r - 2) % 3  # offset (dx, dy) shows ((hx + dx) % W, (hy + dy) % H)
                assert obs[channel, r, c] == cells.get((x, y), 0), (EGOCENTRIC_CHANNELS[channel], r, c)
    # the food at (1, 2) is seen four times: dx in {1, -3}, dy in {2, -1}
    assert obs[EGO_FOOD].sum() == 4
    assert {(r - 2, c - 3) for r, c in zip(*np.nonzero(obs[EGO_FOOD]), strict=True)} == {(2, 1), (2, -3), (-1, 1),
                                                                                          (-1, -3)}
    np.testing.assert_array_equal(obs, reference_egocentric(games, 0, 0))


def test_a_smaller_view_is_the_centre_of_the_full_view() -> None:
    games = games_from(KNOWN)
    full = make_encoder("egocentric").encode(games)
    small = make_encoder("egocentric", view=3).encode(games)
    assert small.shape == (1, 3, 10, 3, 3)
    np.testing.assert_array_equal(small, full[:, :, :, 3 - 1:3 + 2, 4 - 1:4 + 2])


def test_a_view_larger_than_the_board_surrounds_the_full_view_with_off_board_cells() -> None:
    games = games_from(KNOWN)
    full = make_encoder("egocentric").encode(games)
    big = make_encoder("egocentric", view=11).encode(games)
    assert big.shape == (1, 3, 10, 11, 11)
    np.testing.assert_array_equal(big[:, :, :, 2:9, 1:10], full)
    ring = np.ones((11, 11), bool)
    ring[2:9, 1:10] = False
    assert big[:, :, EGO_OFF_BOARD][:, :, ring].all()
    assert (big[0, A, EGO_OWN_HEALTH] == 90).all()
    for s in range(3):
        np.testing.assert_array_equal(big[0, s], reference_egocentric(games, 0, s, view=11))


@pytest.mark.parametrize("view", [0, 4, -1, 2.0, True])
def test_a_view_that_is_not_an_odd_positive_integer_is_refused(view: object) -> None:
    with pytest.raises(ValueError, match="view must be None or an odd positive integer"):
        make_encoder("egocentric", view=view)


# ---------------------------------------------------------------------------------------------- every encoder


def test_eliminated_snakes_see_all_zeros_and_are_not_drawn_for_the_others() -> None:
    dead = {"width": 5, "height": 5, "food": [{"x": 4, "y": 4}], "hazards": [{"x": 0, "y": 4}], "snakes": [
        snake("a", [(1, 1), (1, 2), (1, 3)]),
        snake("b", [(3, 1), (3, 2), (3, 3)], eliminated={"cause": "out-of-health", "by": "", "turn": 2}),
        snake("c", [(4, 0), (5, 0), (5, 0)], eliminated={"cause": "wall-collision", "by": "", "turn": 2}),
    ]}
    games = games_from(dead)
    for name in ENCODERS:
        obs = make_encoder(name).encode(games)
        assert not obs[0, 1].any() and not obs[0, 2].any(), name
        assert obs[0, 0].any(), name
    ego = make_encoder("egocentric").encode(games)[0, 0]
    assert not ego[EGO_OTHER_BODIES].any() and not ego[EGO_LONGER_HEADS].any() and not ego[EGO_OTHER_HEALTH].any()
    legacy = make_encoder("flat-51s").encode(games)[0, 0]
    assert not legacy[:, :, 2:].any()


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize("ruleset", ["standard", "wrapped", "royale", "constrictor"])
def test_shape_and_space_agree_with_every_snakes_observation_over_random_games(name: str, ruleset: str) -> None:
    encoder = make_encoder(name)
    for games in random_games(ruleset, turns=40, seed=len(name)):
        obs = encoder.encode(games)
        shape = encoder.shape(games.settings, games.num_snakes)
        space = encoder.space(games.settings, games.num_snakes)
        assert obs.shape == (games.batch_size, games.num_snakes, *shape)
        assert space.shape == shape and space.dtype == np.uint8
        for b in range(games.batch_size):
            for s in range(games.num_snakes):
                assert space.contains(obs[b, s]), (b, s)


@pytest.mark.parametrize("ruleset", ["standard", "wrapped", "constrictor"])
def test_egocentric_observations_match_the_reference_encoder_over_random_games(ruleset: str) -> None:
    encoder, cropped = make_encoder("egocentric"), make_encoder("egocentric", view=5)
    checked = 0
    for games in random_games(ruleset, turns=40, seed=3):
        obs, small = encoder.encode(games), cropped.encode(games)
        for b in range(games.batch_size):
            for s in range(games.num_snakes):
                np.testing.assert_array_equal(obs[b, s], reference_egocentric(games, b, s), err_msg=f"{b}, {s}")
                np.testing.assert_array_equal(small[b, s], reference_egocentric(games, b, s, view=5))
                checked += games.alive()[b, s]
    assert checked > 50


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoding_a_batch_equals_encoding_each_game_alone(name: str) -> None:
    encoder = make_encoder(name)
    games = random_games("standard", turns=30, seed=5)[-1]
    batch = encoder.encode(games)
    for b in range(games.batch_size):
        alone = Games.from_state(games.settings, select_games(games.state, b))
        np.testing.assert_array_equal(batch[b], encoder.encode(alone)[0])


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoding_into_out_fills_it_in_place_and_allocates_nothing(name: str) -> None:
    encoder = make_encoder(name)
    games = Games(GameSettings(), num_snakes=4, batch_size=16, seed=1)
    out = encoder.encode(games)
    out[:] = 7  # stale values must all be overwritten
    encoder.encode(games, out=out)  # warm up
    expected = encoder.encode(games)
    tracemalloc.start()
    try:
        result = encoder.encode(games, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result is out
    np.testing.assert_array_equal(out, expected)
    assert peak < 4096 < out.nbytes, peak


@pytest.mark.parametrize("bad", [np.zeros((16, 4, 10, 21, 21), np.float32), np.zeros((16, 4, 10, 21, 20), np.uint8),
                                 np.zeros((16, 4, 10, 21, 42), np.uint8)[..., ::2], "not an array"])
def test_an_out_array_of_the_wrong_shape_or_dtype_is_refused(bad: object) -> None:
    games = Games(GameSettings(), num_snakes=4, batch_size=16, seed=1)
    with pytest.raises(ValueError, match="out must be"):
        make_encoder("egocentric").encode(games, out=bad)


def test_the_egocentric_space_bounds_follow_the_channel_table() -> None:
    space = make_encoder("egocentric").space(GameSettings(), 4)
    assert space.shape == (10, 21, 21) and (space.low == 0).all()
    assert [int(space.high[c].max()) for c in range(10)] == [255, 255, 1, 1, 1, 255, 1, 100, 255, 100]
    assert (space.high == space.high[:, :1, :1]).all()  # the same bound on every cell of a channel
    assert make_encoder("egocentric").space(GameSettings(ruleset="wrapped"), 4).high[EGO_OFF_BOARD].max() == 0


# ---------------------------------------------------------------------------------------------- registry


def test_an_unknown_encoder_name_is_named_in_the_error_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown observation encoder 'pixels'") as error:
        make_encoder("pixels")
    for name in ENCODERS:
        assert name in str(error.value)


def test_the_registry_holds_the_egocentric_encoders_and_the_six_starter_pack_encodings() -> None:
    assert set(ENCODERS) == {"egocentric", "territory", "flat-51s", "bordered-51s", "max-bordered-51s", "flat-num",
                             "bordered-num", "max-bordered-num"}
    assert isinstance(make_encoder(), EgocentricEncoder)
    for name, cls in ENCODERS.items():
        assert make_encoder(name).name == name and cls.name == name


# ---------------------------------------------------------------------------------------------- action mask


# (case, board size, ruleset, snake a's body head first, other snakes' bodies, expected mask up/down/left/right)
MASK_CASES = [
    ("the neck and the wall block", 4, "standard", [(0, 2), (1, 2), (1, 1), (1, 0)], [], [1, 1, 0, 0]),
    ("a tail about to move does not block", 3, "standard", [(0, 2), (1, 2), (1, 1), (0, 1)], [], [0, 1, 0, 0]),
    ("a stacked tail blocks", 3, "standard", [(0, 2), (1, 2), (1, 1), (0, 1), (0, 1)], [], [0, 0, 0, 0]),
    ("walls wrap in wrapped rulesets", 3, "wrapped", [(0, 2), (1, 2), (1, 1), (0, 1)], [], [1, 1, 1, 0]),
    ("another snake's body blocks but its moving tail does not", 5, "standard", [(2, 2), (2, 1), (2, 0)],
     [[(1, 3), (2, 3), (3, 3), (3, 2)]], [0, 0, 1, 1]),
    ("another snake's stacked tail blocks", 5, "standard", [(2, 2), (2, 1), (2, 0)],
     [[(1, 3), (2, 3), (3, 3), (3, 2), (3, 2)]], [0, 0, 1, 0]),
]


@pytest.mark.parametrize(("size", "ruleset", "body", "others", "expected"), [c[1:] for c in MASK_CASES],
                         ids=[c[0] for c in MASK_CASES])
def test_the_action_mask_allows_exactly_the_moves_that_are_not_certainly_fatal(
        size: int, ruleset: str, body: list[Point], others: list[list[Point]], expected: list[int]) -> None:
    snakes = [snake("a", body)] + [snake(f"o{i}", other) for i, other in enumerate(others)]
    games = games_from({"width": size, "height": size, "food": [], "hazards": [], "snakes": snakes}, ruleset)
    mask = action_mask(games)
    assert mask.shape == (1, len(snakes), 4) and mask.dtype == np.uint8
    assert mask[0, 0].tolist() == expected


def test_the_action_mask_is_zero_for_eliminated_snakes_and_fills_out_in_place() -> None:
    games = Games(GameSettings(), num_snakes=4, batch_size=8, seed=2)
    games.state.elim_cause[3, 1] = 3
    out = np.full((8, 4, 4), 9, np.uint8)
    assert action_mask(games, out=out) is out
    assert not out[3, 1].any()
    assert set(np.unique(out).tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="out must be"):
        action_mask(games, out=np.zeros((8, 4, 3), np.uint8))
