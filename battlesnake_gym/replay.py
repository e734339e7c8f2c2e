"""Draw a recorded game: an official CLI export (``battlesnake play -o FILE``) or ours (``battlesnake-rl demo``) as
text frames, an animated GIF or a self-contained HTML page.

How to run::

    battlesnake-rl replay game.jsonl --gif game.gif --html game.html
    battlesnake-rl replay game.jsonl            # text frames on stdout (the same as --text)

An export is JSON lines: line 1 the game object (``id``, ``ruleset``, ``map``...), then one ``/move`` request per
turn (``game``, ``turn``, ``board``, ``you``), and last ``{"winnerId", "winnerName", "isDraw"}``. A file that is not
one is refused with its name, the line and the problem (exit status 2).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .engine import RULESETS, BoardError, board_from_json
from .render import render_text, save_gif, save_html


class ReplayError(ValueError):
    """A file that cannot be read as a game export; the message names the file (and line) and the problem."""


@dataclass
class GameRecord:
    """A game read from an export."""

    game: dict  # the game object of line 1 (id, ruleset, map, timeout, source)
    turns: list[int]  # (T,) the turn of each frame, increasing
    boards: list[dict]  # (T,) the API board of each turn: live snakes only
    result: dict | None  # the closing line {"winnerId", "winnerName", "isDraw"}, or None when the file has none

    def outcome(self) -> str:
        """The result in words, e.g. ``winner: alpha`` or ``draw``."""
        if self.result is None:
            return "result: not recorded"
        if self.result.get("isDraw"):
            return "draw"
        name = self.result.get("winnerName") or self.result.get("winnerId")
        return f"winner: {name}" if name else "no winner"


def read_export(path: str | Path) -> GameRecord:
    """Read and check a game export; raises ``ReplayError`` naming the file, the line and the problem."""
    path = Path(path)
    if not path.exists():
        raise ReplayError(f"{path}: no such file")
    if not path.is_file():
        raise ReplayError(f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{path}: cannot be read: {exc}") from None
    lines: list[tuple[int, object]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ReplayError(f"{path}:{n}: not JSON ({exc.msg}); a game export is one JSON object per line") from None
    if not lines:
        raise ReplayError(f"{path}: the file is empty, not a game export")

    n, game = lines[0]
    if isinstance(game, dict) and "kind" in game and "case" in game:
        raise ReplayError(f"{path}:{n}: a conformance trace, not a game export (check it with battlesnake-rl "
                          f"conformance)")
    if not isinstance(game, dict) or not isinstance(game.get("ruleset"), dict) or "board" in game:
        raise ReplayError(f"{path}:{n}: not a game export: the first line should be the game object "
                          f"(with a 'ruleset' object), got {_short(game)}")
    ruleset = game["ruleset"].get("name")
    wrapped = ruleset in RULESETS and RULESETS[ruleset].wrapped
    record = GameRecord(game=game, turns=[], boards=[], result=None)
    for n, entry in lines[1:]:
        if record.result is not None:
            raise ReplayError(f"{path}:{n}: a line after the closing result line")
        if isinstance(entry, dict) and "board" in entry:
            turn = entry.get("turn")
            if isinstance(turn, bool) or not isinstance(turn, int) or turn < 0:
                raise ReplayError(f"{path}:{n}: turn must be a non-negative integer, got {turn!r}")
            if record.turns and turn <= record.turns[-1]:
                raise ReplayError(f"{path}:{n}: turn {turn} does not follow turn {record.turns[-1]}")
            try:
                _check_board(entry["board"], turn, wrapped)
            except BoardError as exc:
                raise ReplayError(f"{path}:{n}: bad board: {exc}") from None
            record.turns.append(turn)
            record.boards.append(entry["board"])
        elif isinstance(entry, dict) and ("winnerId" in entry or "isDraw" in entry):
            record.result = entry
        else:
            raise ReplayError(f"{path}:{n}: neither a /move request (with 'turn' and 'board') nor the closing "
                              f"result line (with 'winnerId'), got {_short(entry)}")
    if not record.boards:
        raise ReplayError(f"{path}: not a game export: no turns (no /move request lines after the game object)")
    return record


#: Stands in for the snakes of a board on which none is left (the last turn of a solo game), so that the engine's
#: reader checks the rest of the board: an eliminated snake may lie anywhere.
_NOBODY = {"id": "nobody", "health": 0, "body": [{"x": 0, "y": 0}],
           "eliminated": {"cause": "out-of-health", "by": "", "turn": 0}}


def _check_board(board: object, turn: int, wrapped: bool) -> None:
    """Raise ``BoardError`` unless ``board`` is a legal API board (one with no snakes left included)."""
    if isinstance(board, dict) and board.get("snakes") == []:
        board = {**board, "snakes": [_NOBODY]}
    board_from_json(board, turn=turn, wrapped=wrapped)


def _short(value: object, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def text_frames(record: GameRecord) -> str:
    """Every turn drawn as text, then the result."""
    frames = [f"turn {turn}\n{render_text(board)}\n" for turn, board in zip(record.turns, record.boards)]
    return "\n".join(frames + [record.outcome()])


def _title(record: GameRecord) -> str:
    ruleset = record.game["ruleset"].get("name", "?")
    board = record.boards[0]
    return f"{ruleset} {board['width']}x{board['height']}, map {record.game.get('map') or 'standard'}, " \
           f"game {record.game.get('id', '?')}"


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="battlesnake-rl replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="a game export (JSON lines)")
    parser.add_argument("--gif", type=Path, help="write an animated GIF here")
    parser.add_argument("--html", type=Path, help="write a self-contained HTML replay here")
    parser.add_argument("--text", action="store_true", help="print every turn as text (the default with no output)")
    parser.add_argument("--fps", type=float, default=6.0, help="turns per second (default 6)")
    parser.add_argument("--cell", type=int, default=20, help="pixels per board cell in the GIF (default 20)")
    args = parser.parse_args(argv)
    if not args.fps > 0:
        parser.error(f"--fps must be > 0, got {args.fps}")
    if args.cell < 2:
        parser.error(f"--cell must be >= 2, got {args.cell}")

    try:
        record = read_export(args.file)
    except ReplayError as exc:
        print(f"battlesnake-rl replay: error: {exc}", file=sys.stderr)
        return 2
    if args.text or (args.gif is None and args.html is None):
        print(text_frames(record))
    try:
        if args.gif is not None:
            args.gif.parent.mkdir(parents=True, exist_ok=True)
            save_gif(record.boards, args.gif, fps=args.fps, cell=args.cell)
            print(f"wrote {args.gif}: {len(record.boards)} turns")
        if args.html is not None:
            args.html.parent.mkdir(parents=True, exist_ok=True)
            save_html(record.boards, args.html, fps=args.fps, turns=record.turns, title=_title(record),
                      result=record.outcome())
            print(f"wrote {args.html}: {len(record.boards)} turns")
    except OSError as exc:
        print(f"battlesnake-rl replay: error: cannot write: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
