"""The picture notation of the rule tests (``ascii_boards``) says what it claims to."""

from __future__ import annotations

import pytest
from ascii_boards import PictureError, assert_board, board, draw

from battlesnake_gym.engine import board_from_json


def cells(points: list[dict]) -> list[tuple[int, int]]:
    return [(p["x"], p["y"]) for p in points]


def test_the_top_row_is_the_highest_y_and_the_body_is_walked_from_the_head() -> None:
    b = board("""
        ..*
        Aa.
        .a.
    """)
    assert (b["width"], b["height"]) == (3, 3)
    assert cells(b["food"]) == [(2, 2)]
    assert b["snakes"] == [{"id": "a", "health": 100, "body": [{"x": 0, "y": 1}, {"x": 1, "y": 1}, {"x": 1, "y": 0}],
                            "eliminated": None}]


def test_spaced_tokens_put_a_snake_food_and_stacked_hazards_on_one_cell() -> None:
    b = board("""
        .   **  3
        A~  a*  a
    """)
    assert cells(b["food"]) == [(1, 0), (1, 1), (1, 1)]
    assert sorted(cells(b["hazards"])) == [(0, 0), (2, 1), (2, 1), (2, 1)]
    assert cells(b["snakes"][0]["body"]) == [(0, 0), (1, 0), (2, 0)]


def test_facts_the_picture_cannot_show_are_keyword_arguments() -> None:
    b = board("A.B", stacked={"a": 3}, health={"b": 7}, eliminated={"b": ("hazard", "", 4)}, order="ba")
    assert [s["id"] for s in b["snakes"]] == ["b", "a"]
    assert cells(b["snakes"][1]["body"]) == [(0, 0)] * 3
    assert b["snakes"][0]["health"] == 7
    assert b["snakes"][0]["eliminated"] == {"cause": "hazard", "by": "", "turn": 4}


def test_a_wrapped_picture_joins_segments_across_the_edges() -> None:
    picture = """
        ....
        ....
        aa.A
    """
    b = board(picture, wrapped=True)
    assert cells(b["snakes"][0]["body"]) == [(3, 0), (0, 0), (1, 0)]
    board_from_json(b, wrapped=True)
    with pytest.raises(PictureError, match="no path"):
        board(picture)


@pytest.mark.parametrize(("picture", "facts", "message"), [
    ("aa\nAa", {}, "ambiguous"),
    ("Aa.\n..a", {}, "no path"),
    ("A.A", {}, "exactly one head"),
    ("aa.", {}, "exactly one head"),
    ("A..\n..", {}, "different widths"),
    ("A#.", {}, "holds '#'"),
    ("Aa.", {"bodies": {"a": [(0, 0), (0, 1)]}}, "does not match"),
    ("Aa.", {"health": {"z": 1}}, "neither drawn"),
])
def test_a_picture_that_is_not_one_clear_board_is_refused_with_a_reason(picture: str, facts: dict,
                                                                        message: str) -> None:
    with pytest.raises(PictureError, match=message):
        board(picture, **facts)


def test_a_loop_is_given_with_bodies_and_may_be_drawn_too() -> None:
    b = board("aa\nAa", bodies={"a": [(0, 0), (1, 0), (1, 1), (0, 1)]})
    assert cells(b["snakes"][0]["body"]) == [(0, 0), (1, 0), (1, 1), (0, 1)]


def test_drawing_a_board_gives_back_the_same_board() -> None:
    b = board("""
        .  *  3  .
        A~ a  a  .
        .  .  a* B
    """, stacked={"a": 2, "b": 3})
    redrawn = board(draw(b), stacked={"a": 2, "b": 3})
    assert redrawn["snakes"] == b["snakes"]
    assert sorted(cells(redrawn["food"])) == sorted(cells(b["food"]))
    assert sorted(cells(redrawn["hazards"])) == sorted(cells(b["hazards"]))


def test_assert_board_names_every_difference_and_draws_both_boards() -> None:
    actual = board("A.B", eliminated={"b": ("wall-collision", "", 3)}, health={"a": 50})
    with pytest.raises(AssertionError) as failure:
        assert_board(actual, "*A.", eliminated={"b": ("head-collision", "a")}, health={"a": 60},
                     elimination_turn=3)
    message = str(failure.value)
    for part in ("food", "snake 'a' body", "health 50, expected 60", "'cause': 'wall-collision'", "expected:"):
        assert part in message
    assert_board(actual, "A..", eliminated={"b": ("wall-collision", "")}, health={"a": 50}, elimination_turn=3)


def test_assert_board_requires_every_live_snake_to_be_drawn() -> None:
    with pytest.raises(AssertionError, match="'b' is alive but not drawn"):
        assert_board(board("A.B"), "A..")
