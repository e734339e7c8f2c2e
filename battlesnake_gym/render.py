"""Text pictures of boards (JSON board dicts, trace or API format). (0, 0) is drawn bottom-left."""

from __future__ import annotations

import string
from collections.abc import Mapping

_HEADS = string.ascii_uppercase
_BODIES = string.ascii_lowercase


def render_text(board: Mapping, *, legend: bool = True) -> str:
    """A picture of the board: ``A`` head and ``a`` body of the first snake, ``*`` food, ``~`` hazard.

    Eliminated snakes are not drawn; stacked hazards show their count (2-9) where nothing else is.
    """
    width, height = board["width"], board["height"]
    grid = [["." for _ in range(width)] for _ in range(height)]
    stacked: dict[tuple[int, int], int] = {}
    for p in board.get("hazards", ()):
        stacked[(p["x"], p["y"])] = stacked.get((p["x"], p["y"]), 0) + 1
    for (x, y), n in stacked.items():
        if 0 <= x < width and 0 <= y < height:
            grid[y][x] = "~" if n == 1 else str(min(n, 9))
    for p in board.get("food", ()):
        grid[p["y"]][p["x"]] = "*"
    lines = []
    for i, snake in enumerate(board["snakes"]):
        eliminated = snake.get("eliminated")
        if not eliminated:
            for j, p in reversed(list(enumerate(snake["body"]))):
                if 0 <= p["x"] < width and 0 <= p["y"] < height:
                    grid[p["y"]][p["x"]] = (_HEADS if j == 0 else _BODIES)[i % 26]
        if legend:
            status = (f" eliminated: {eliminated['cause']} by {eliminated['by'] or '-'} on turn {eliminated['turn']}"
                      if eliminated else "")
            lines.append(f"{_HEADS[i % 26]} {snake['id']}: health {snake['health']}, "
                         f"length {len(snake['body'])}{status}")
    rows = ["".join(row) for row in reversed(grid)]
    return "\n".join(rows + lines)


def side_by_side(left: str, right: str, titles: tuple[str, str] = ("expected", "got"), gap: int = 4) -> str:
    a, b = left.splitlines(), right.splitlines()
    width = max([len(line) for line in a] + [len(titles[0])])
    out = [titles[0].ljust(width + gap) + titles[1]]
    for i in range(max(len(a), len(b))):
        out.append((a[i] if i < len(a) else "").ljust(width + gap) + (b[i] if i < len(b) else ""))
    return "\n".join(out)
