"""Battlesnake boards drawn as small ASCII pictures, for rule tests.

A picture is one row of cells per line; the TOP line is ``y = height - 1`` and the bottom line is ``y = 0``, the
left column is ``x = 0`` (the API's convention: (0, 0) bottom-left, ``up`` = y + 1). Blank lines and the common
indentation are ignored.

Cells are single characters (``"..*.."``) or, when any row holds a space, whitespace-separated tokens
(``". A~ a **"``), so that one cell can hold several things. A token is ``.`` (empty) or, in this order:

- an optional snake letter: UPPERCASE is the snake's head, the same letter in lowercase is one of its body segments;
  the snake's id is the lowercase letter (``"a"``);
- ``*`` once per food entry on the cell (``**`` = two food entries on one cell: the food list may repeat a cell);
- an optional hazard mark: ``~`` for one hazard entry, or a digit ``1``-``9`` for that many stacked entries.

So ``*~`` is food on a hazard, ``3`` three stacked hazard entries, ``A~`` a head on a hazard.

The body order is the one path that starts at the head and steps through orthogonally adjacent cells of the same
lowercase letter until it has visited each of them once (across the edges too when ``wrapped=True``). When no such
path exists, or more than one does (a snake curled into a loop), ``PictureError`` says so; give the body
explicitly with ``bodies=``. Facts a picture
cannot show are keyword arguments of ``board`` keyed by snake id: ``health`` (default 100), ``stacked`` (how many
segments lie on the tail cell, default 1: a freshly placed snake is ``"A"`` with ``stacked={"a": 3}``),
``bodies`` (explicit head-first cells, which may lie off the board for an eliminated snake), ``eliminated``
and ``order`` (board order of the snakes, default alphabetical).

``assert_board`` compares a stepped board (as ``board_to_json`` returns it) with an expected picture plus the
expected eliminations and health, and shows both boards drawn side by side when they differ.

Example::

    >>> b = board('''
    ...     . . * .
    ...     . A a a
    ...     ~ ~ 2 .
    ... ''')
    >>> [(p["x"], p["y"]) for p in b["snakes"][0]["body"]]
    [(1, 1), (2, 1), (3, 1)]
    >>> len(b["hazards"])
    4
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Point = tuple[int, int]
#: An expected elimination: (cause, by) with the turn implied by the step, or (cause, by, turn).
Elimination = tuple[str, str] | tuple[str, str, int]

_TOKEN = re.compile(r"^(?P<snake>[A-Za-z])?(?P<food>\**)(?P<hazard>~|[1-9])?$")


class PictureError(ValueError):
    """A picture (or its keyword facts) that does not describe one board unambiguously."""


def _rows(picture: str) -> list[list[str]]:
    lines = [line.strip() for line in picture.strip("\n").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise PictureError("the picture is empty")
    spaced = any(" " in line or "\t" in line for line in lines)
    rows = [line.split() if spaced else list(line) for line in lines]
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise PictureError(f"rows of the picture have different widths {sorted(widths)}:\n{picture}")
    return rows


def _neighbours(p: Point, width: int, height: int, wrapped: bool) -> list[Point]:
    x, y = p
    out = []
    for nx, ny in ((x, y + 1), (x, y - 1), (x - 1, y), (x + 1, y)):
        if wrapped:
            if (nx % width, ny % height) not in out:  # a 2-wide board reaches one cell both ways
                out.append((nx % width, ny % height))
        elif 0 <= nx < width and 0 <= ny < height:
            out.append((nx, ny))
    return out


def _walk(sid: str, head: Point, segments: set[Point], width: int, height: int, wrapped: bool) -> list[Point]:
    """The one path from the head through every segment, each step to an orthogonal neighbour."""
    found: list[list[Point]] = []

    def extend(path: list[Point], left: set[Point]) -> None:
        if len(found) > 1:
            return
        if not left:
            found.append(list(path))
            return
        for p in _neighbours(path[-1], width, height, wrapped):
            if p in left:
                path.append(p)
                extend(path, left - {p})
                path.pop()

    extend([head], set(segments))
    if not found:
        raise PictureError(f"snake {sid!r}: no path from the head {head} runs through all its segments "
                           f"{sorted(segments)}; give the body explicitly with bodies={{{sid!r}: [...]}}")
    if len(found) > 1:
        raise PictureError(f"snake {sid!r}: the body is ambiguous, e.g. {found[0]} or {found[1]}; "
                           f"give it explicitly with bodies={{{sid!r}: [...]}}")
    return found[0]


def _elimination(sid: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {"cause": value["cause"], "by": value.get("by", ""), "turn": value["turn"]}
    if isinstance(value, tuple) and len(value) == 3:
        cause, by, turn = value
        return {"cause": cause, "by": by, "turn": turn}
    raise PictureError(f"eliminated[{sid!r}] must be (cause, by, turn) or a dict, got {value!r}")


def _points(cells: Sequence[Point]) -> list[dict[str, int]]:
    return [{"x": x, "y": y} for x, y in cells]


def board(
    picture: str,
    *,
    health: Mapping[str, int] | None = None,
    stacked: Mapping[str, int] | None = None,
    bodies: Mapping[str, Sequence[Point]] | None = None,
    eliminated: Mapping[str, Any] | None = None,
    order: Sequence[str] | None = None,
    wrapped: bool = False,
) -> dict[str, Any]:
    """The trace-format JSON board (``width, height, food, hazards, snakes``) that ``picture`` shows.

    Food and hazards are listed x-major then y (pictures carry no order). Snakes are listed in ``order`` (default:
    alphabetical ids); a snake given only in ``bodies`` (not drawn) is listed too.
    """
    health, stacked, bodies = dict(health or {}), dict(stacked or {}), dict(bodies or {})
    eliminated = dict(eliminated or {})
    rows = _rows(picture)
    height, width = len(rows), len(rows[0])
    food: list[Point] = []
    hazards: list[Point] = []
    heads: dict[str, list[Point]] = {}
    segments: dict[str, set[Point]] = {}
    cells: dict[Point, str] = {}
    for r, row in enumerate(rows):
        for x, token in enumerate(row):
            cells[(x, height - 1 - r)] = token
    for x in range(width):
        for y in range(height):
            token = cells[(x, y)]
            if token == ".":
                continue
            m = _TOKEN.match(token)
            if not m or not token:
                raise PictureError(f"cell ({x}, {y}) holds {token!r}: expected '.', a snake letter, '*' per food "
                                   f"entry and '~' or a digit for hazards, in that order")
            if m["snake"]:
                sid = m["snake"].lower()
                if m["snake"].isupper():
                    heads.setdefault(sid, []).append((x, y))
                else:
                    segments.setdefault(sid, set()).add((x, y))
            food += [(x, y)] * len(m["food"])
            if m["hazard"]:
                hazards += [(x, y)] * (1 if m["hazard"] == "~" else int(m["hazard"]))

    drawn = set(heads) | set(segments)
    for fact, mapping in (("health", health), ("stacked", stacked), ("eliminated", eliminated)):
        unknown = set(mapping) - drawn - set(bodies)
        if unknown:
            raise PictureError(f"{fact} names snakes {sorted(unknown)} that are neither drawn nor in bodies=")
    ids = sorted(drawn | set(bodies))
    if order is not None:
        if sorted(order) != ids:
            raise PictureError(f"order {list(order)} must list exactly the snakes {ids}")
        ids = list(order)

    snakes = []
    for sid in ids:
        if sid in bodies:
            body = [tuple(p) for p in bodies[sid]]
            if sid in stacked:
                raise PictureError(f"snake {sid!r}: give stacked segments inside bodies=, not with stacked=")
            if sid in drawn:
                shown = set(heads.get(sid, [])) | segments.get(sid, set())
                if heads.get(sid) != [body[0]] or shown != set(body):
                    raise PictureError(f"snake {sid!r}: bodies= {body} does not match the drawn cells "
                                       f"(head {heads.get(sid)}, segments {sorted(segments.get(sid, ()))})")
        else:
            if len(heads.get(sid, [])) != 1:
                raise PictureError(f"snake {sid!r} needs exactly one head {sid.upper()!r}, "
                                   f"found {len(heads.get(sid, []))}")
            body = _walk(sid, heads[sid][0], segments.get(sid, set()), width, height, wrapped)
            extra = stacked.get(sid, 1)
            if extra < 1:
                raise PictureError(f"stacked[{sid!r}] must be >= 1, got {extra}")
            body += [body[-1]] * (extra - 1)
        snakes.append({
            "id": sid,
            "health": health.get(sid, 100),
            "body": _points(body),
            "eliminated": _elimination(sid, eliminated[sid]) if sid in eliminated else None,
        })
    return {"width": width, "height": height, "food": _points(food), "hazards": _points(hazards), "snakes": snakes}


def draw(board_json: Mapping[str, Any], *, dead: bool = True) -> str:
    """The picture of a JSON board, in the spaced token format (snake ids longer than one letter become ``?``).

    Live snakes are drawn first; an eliminated snake (``dead=True``) only on cells no live snake holds.
    """
    width, height = board_json["width"], board_json["height"]
    snake_at: dict[Point, str] = {}
    for live in (True, False):
        if not live and not dead:
            continue
        for snake in board_json["snakes"]:
            if (snake["eliminated"] is None) != live:
                continue
            letter = snake["id"] if len(snake["id"]) == 1 else "?"
            for i, p in reversed(list(enumerate(snake["body"]))):
                cell = (p["x"], p["y"])
                if 0 <= cell[0] < width and 0 <= cell[1] < height and (live or cell not in snake_at):
                    snake_at[cell] = letter.upper() if i == 0 else letter.lower()
    food = Counter((p["x"], p["y"]) for p in board_json["food"])
    hazards = Counter((p["x"], p["y"]) for p in board_json["hazards"])
    rows = []
    for y in range(height - 1, -1, -1):
        tokens = []
        for x in range(width):
            h = hazards[(x, y)]
            token = snake_at.get((x, y), "") + "*" * food[(x, y)] + ("~" if h == 1 else str(h) if h else "")
            tokens.append(token or ".")
        rows.append(" ".join(f"{t:<3}" for t in tokens).rstrip())
    return "\n".join(rows)


def _cells(points: Sequence[Mapping[str, int]]) -> list[Point]:
    return sorted((p["x"], p["y"]) for p in points)


def assert_board(
    actual: Mapping[str, Any],
    picture: str,
    *,
    eliminated: Mapping[str, Elimination] | None = None,
    health: Mapping[str, int] | None = None,
    elimination_turn: int | None = None,
    check_hazards: bool = True,
    **facts: Any,
) -> None:
    """Check a stepped board against an expected picture.

    - Food and hazards must match the picture as multisets (``check_hazards=False`` skips hazards).
    - Every live snake must be drawn, with exactly the drawn body (``facts``: ``stacked``/``bodies``/``wrapped``
      as for ``board``). An eliminated snake is compared only when drawn or given in ``bodies``.
    - Exactly the snakes in ``eliminated`` are eliminated, each with that cause and ``by``, and with the given turn
      (or ``elimination_turn`` for a 2-tuple).
    - Each snake in ``health`` has that health.
    """
    eliminated, health = dict(eliminated or {}), dict(health or {})
    expected = board(picture, **facts)
    problems: list[str] = []
    if (actual["width"], actual["height"]) != (expected["width"], expected["height"]):
        problems.append(f"size {actual['width']}x{actual['height']}, expected {expected['width']}x"
                        f"{expected['height']}")
    if _cells(actual["food"]) != _cells(expected["food"]):
        problems.append(f"food {_cells(actual['food'])}, expected {_cells(expected['food'])}")
    if check_hazards and _cells(actual["hazards"]) != _cells(expected["hazards"]):
        problems.append(f"hazards {_cells(actual['hazards'])}, expected {_cells(expected['hazards'])}")
    by_id = {s["id"]: s for s in actual["snakes"]}
    drawn = {s["id"]: s for s in expected["snakes"]}
    for sid in sorted(set(drawn) | set(eliminated) | set(health)):
        if sid not in by_id:
            problems.append(f"snake {sid!r} is expected but not on the board")
    for sid, snake in by_id.items():
        if sid in drawn:
            got, want = _points_list(snake["body"]), _points_list(drawn[sid]["body"])
            if got != want:
                problems.append(f"snake {sid!r} body {got}, expected {want}")
        elif snake["eliminated"] is None:
            problems.append(f"snake {sid!r} is alive but not drawn in the expected picture")
        if sid in health and snake["health"] != health[sid]:
            problems.append(f"snake {sid!r} health {snake['health']}, expected {health[sid]}")
        want_elim = eliminated.get(sid)
        got_elim = snake["eliminated"]
        if want_elim is None:
            if got_elim is not None:
                problems.append(f"snake {sid!r} eliminated {got_elim}, expected alive")
            continue
        turn = want_elim[2] if len(want_elim) == 3 else elimination_turn
        want = {"cause": want_elim[0], "by": want_elim[1], "turn": turn}
        if got_elim is None:
            problems.append(f"snake {sid!r} is alive, expected eliminated {want}")
        elif any(got_elim.get(k) != v for k, v in want.items() if v is not None):
            problems.append(f"snake {sid!r} eliminated {got_elim}, expected {want}")
    if problems:
        raise AssertionError("\n".join(problems) + "\n\ngot:\n" + draw(actual) + "\n\nexpected:\n" + draw(expected))


def _points_list(points: Sequence[Mapping[str, int]]) -> list[Point]:
    return [(p["x"], p["y"]) for p in points]
