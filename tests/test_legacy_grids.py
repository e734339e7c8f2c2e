"""The starter pack's legacy grids (``LegacyGridEncoder``): exact layers on a pictured board, and agreement with a
slow reference encoder over random games."""

from __future__ import annotations

import numpy as np
import pytest
from encoder_boards import KNOWN, A, B, C, games_from, random_games, snake

from battlesnake_gym.engine import Games, GameSettings
from battlesnake_gym.observations import ENCODERS, LEGACY_BORDER, LegacyGridEncoder, make_encoder

LEGACY_NAMES = [name for name, cls in ENCODERS.items() if issubclass(cls, LegacyGridEncoder)]


def grid(picture: str) -> np.ndarray:
    """A legacy layer drawn as rows of numbers, top row first."""
    return np.array([[int(v) for v in line.split()] for line in picture.strip().splitlines()], np.uint8)


# ---------------------------------------------------------------------------------------------- slow reference


def reference_legacy(games: Games, b: int, s: int, name: str) -> np.ndarray:
    """The starter pack's global grid for game b (layer 0 food, then snakes), viewer's layer moved to 1."""
    st, w, h = games.state, games.settings.width, games.settings.height
    numbered = name.endswith("num")
    layers = np.zeros((h, w, games.num_snakes + 1), np.int64)
    for x, y in st.food[b, : st.food_count[b]].tolist():
        layers[h - 1 - y, x, 0] = 1
    for o in range(games.num_snakes):
        if st.elim_cause[b, o]:
            continue
        n = int(st.length[b, o])
        for i, (x, y) in enumerate(st.body[b, o, :n].tolist()):
            if numbered:
                layers[h - 1 - y, x, o + 1] = max(layers[h - 1 - y, x, o + 1], min(n - i, 254))
            elif i:
                layers[h - 1 - y, x, o + 1] = 1
        if not numbered:
            hx, hy = st.body[b, o, 0].tolist()
            layers[h - 1 - hy, hx, o + 1] = 5
    order = [0, s + 1] + [o + 1 for o in range(games.num_snakes) if o != s]
    layers = layers[:, :, order]
    if name.startswith("bordered"):
        layers = np.pad(layers, ((1, 1), (1, 1), (0, 0)), constant_values=LEGACY_BORDER)
    elif name.startswith("max-bordered"):
        top, left = (21 - h) // 2, (21 - w) // 2
        layers = np.pad(layers, ((top, 21 - h - top), (left, 21 - w - left), (0, 0)), constant_values=LEGACY_BORDER)
    if st.elim_cause[b, s]:
        layers[:] = 0
    return layers.astype(np.uint8)


# ---------------------------------------------------------------------------------------------- legacy encodings


FOOD = grid("""
    0 0 1 0 0
    0 0 0 0 0
    0 0 0 0 0
    0 1 0 0 0
""")
A_51S = grid("""
    0 0 0 0 0
    0 5 1 1 0
    0 0 0 0 0
    0 0 0 0 0
""")
B_51S = grid("""
    0 0 0 0 0
    0 0 0 0 0
    0 0 0 1 1
    0 0 5 1 0
""")
C_51S = grid("""
    5 1 0 0 0
    0 0 0 0 0
    0 0 0 0 0
    0 0 0 0 0
""")
A_NUM = grid("""
    0 0 0 0 0
    0 4 3 2 0
    0 0 0 0 0
    0 0 0 0 0
""")
B_NUM = grid("""
    0 0 0 0 0
    0 0 0 0 0
    0 0 0 2 1
    0 0 4 3 0
""")
C_NUM = grid("""
    2 1 0 0 0
    0 0 0 0 0
    0 0 0 0 0
    0 0 0 0 0
""")


@pytest.mark.parametrize(("name", "snake_layers"), [("flat-51s", (A_51S, B_51S, C_51S)),
                                                    ("flat-num", (A_NUM, B_NUM, C_NUM))])
def test_flat_legacy_grids_draw_food_then_each_snake_top_row_first(name: str, snake_layers: tuple) -> None:
    obs = make_encoder(name).encode(games_from(KNOWN))
    assert obs.shape == (1, 3, 4, 5, 4)
    np.testing.assert_array_equal(obs[0, A], np.stack((FOOD, *snake_layers), axis=-1))


@pytest.mark.parametrize(("name", "snake_layers"), [("bordered-51s", (A_51S, B_51S, C_51S)),
                                                    ("bordered-num", (A_NUM, B_NUM, C_NUM))])
def test_bordered_legacy_grids_put_a_one_cell_wall_of_255_around_every_layer(name: str, snake_layers: tuple) -> None:
    obs = make_encoder(name).encode(games_from(KNOWN))
    assert obs.shape == (1, 3, 6, 7, 4)
    flat = np.stack((FOOD, *snake_layers), axis=-1)
    np.testing.assert_array_equal(obs[0, A], np.pad(flat, ((1, 1), (1, 1), (0, 0)), constant_values=255))
    if name.endswith("51s"):  # the starter pack's -1 wall comes back as a signed view
        assert set(np.unique(obs[0, A].view(np.int8)).tolist()) == {-1, 0, 1, 5}


@pytest.mark.parametrize(("name", "snake_layers"), [("max-bordered-51s", (A_51S, B_51S, C_51S)),
                                                    ("max-bordered-num", (A_NUM, B_NUM, C_NUM))])
def test_max_bordered_legacy_grids_pad_the_board_to_21_by_21(name: str, snake_layers: tuple) -> None:
    obs = make_encoder(name).encode(games_from(KNOWN))
    assert obs.shape == (1, 3, 21, 21, 4)
    flat = np.stack((FOOD, *snake_layers), axis=-1)
    # 21 - 4 = 17 rows of wall: 8 above, 9 below; 21 - 5 = 16 columns: 8 each side
    np.testing.assert_array_equal(obs[0, A], np.pad(flat, ((8, 9), (8, 8), (0, 0)), constant_values=255))
    small = make_encoder(name, max_size=7).encode(games_from(KNOWN))
    np.testing.assert_array_equal(small[0, A], np.pad(flat, ((1, 2), (1, 1), (0, 0)), constant_values=255))


def test_legacy_grids_put_the_viewing_snake_in_layer_one_and_the_others_in_slot_order() -> None:
    obs = make_encoder("flat-51s").encode(games_from(KNOWN))
    np.testing.assert_array_equal(obs[0, B], np.stack((FOOD, B_51S, A_51S, C_51S), axis=-1))
    np.testing.assert_array_equal(obs[0, C], np.stack((FOOD, C_51S, A_51S, B_51S), axis=-1))


def test_legacy_grids_without_viewer_first_give_every_snake_the_starter_packs_global_grid() -> None:
    obs = make_encoder("flat-num", viewer_first=False).encode(games_from(KNOWN))
    for s in range(3):
        np.testing.assert_array_equal(obs[0, s], np.stack((FOOD, A_NUM, B_NUM, C_NUM), axis=-1))


def test_a_head_on_its_own_stacked_start_cell_is_drawn_as_head() -> None:
    start = {"width": 3, "height": 3, "food": [], "hazards": [], "snakes": [snake("a", [(1, 1)] * 3)]}
    games = games_from(start)
    assert make_encoder("flat-51s").encode(games)[0, 0, 1, 1, 1] == 5
    assert make_encoder("flat-num").encode(games)[0, 0, 1, 1, 1] == 3


def test_max_bordered_refuses_a_board_that_leaves_no_room_for_the_wall() -> None:
    encoder = make_encoder("max-bordered-51s")
    assert encoder.shape(GameSettings(width=19, height=19), 4) == (21, 21, 5)
    with pytest.raises(ValueError, match="at most 19 x 19"):
        encoder.shape(GameSettings(width=21, height=19), 4)
    assert make_encoder("max-bordered-51s", max_size=25).shape(GameSettings(width=21, height=19), 4) == (25, 25, 5)


def test_the_legacy_space_bounds_are_exact_per_cell() -> None:
    space = make_encoder("bordered-51s").space(GameSettings(width=5, height=4), 3)
    assert space.shape == (6, 7, 4)
    assert (space.low == 0).all()
    assert (space.high[0, :, :] == 255).all() and (space.high[:, -1, :] == 255).all()
    assert (space.high[1:-1, 1:-1, 0] == 1).all() and (space.high[1:-1, 1:-1, 1:] == 5).all()


@pytest.mark.parametrize("name", LEGACY_NAMES)
def test_legacy_observations_match_the_reference_encoder_over_random_games(name: str) -> None:
    encoder = make_encoder(name)
    for games in random_games("standard", turns=40, seed=4):
        obs = encoder.encode(games)
        for b in range(games.batch_size):
            for s in range(games.num_snakes):
                np.testing.assert_array_equal(obs[b, s], reference_legacy(games, b, s, name), err_msg=f"{b}, {s}")
