"""A game between bots, played on the engine and drawn as text; optionally exported in the official CLI's format."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from .bots import BOTS, make_bot
from .engine import Games, GameSettings, api_board, board_to_json
from .render import render_text


def play(settings: GameSettings, num_snakes: int, bot: str, seed: int, max_turns: int = 10_000,
         out: TextIO | None = sys.stdout, every: int = 25, export: Path | None = None) -> dict:
    """Play one game to its end; print every ``every``-th board and the last; return a summary."""
    games = Games(settings, num_snakes=num_snakes, batch_size=1, seed=seed)
    policy = make_bot(bot, seed)
    ids = [f"{bot}-{i + 1}" for i in range(num_snakes)]
    game_object = {"id": str(uuid.UUID(int=seed)), "ruleset": {"name": settings.ruleset, "version": "battlesnake-rl",
                   "settings": settings.to_api()}, "map": settings.map, "timeout": 500, "source": "battlesnake-rl"}
    frames = []
    while True:
        turn = int(games.state.turn[0])
        board = api_board(games.state, settings, ids)
        if board["snakes"] or not frames:
            frames.append({"game": game_object, "turn": turn, "board": board,
                           "you": board["snakes"][0] if board["snakes"] else None})
        if out is not None and (turn % every == 0):
            print(f"turn {turn}\n{render_text(board_to_json(games.state, settings.width, settings.height, ids))}\n",
                  file=out)
        if games.finished()[0] or turn >= max_turns:
            break
        games.step(policy(games))
    final = board_to_json(games.state, settings.width, settings.height, ids)
    alive = [s["id"] for s in final["snakes"] if not s["eliminated"]]
    winner = alive[0] if len(alive) == 1 and num_snakes > 1 else ""
    summary = {"turns": int(games.state.turn[0]), "winner": winner,
               "eliminations": {s["id"]: s["eliminated"] for s in final["snakes"] if s["eliminated"]}}
    if out is not None:
        print(f"final board, turn {summary['turns']}\n{render_text(final)}\n", file=out)
        print(f"winner: {winner or ('none' if num_snakes > 1 else 'solo game')} after {summary['turns']} turns",
              file=out)
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        with export.open("w") as fh:
            fh.write(json.dumps(game_object) + "\n")
            for frame in frames:
                fh.write(json.dumps(frame) + "\n")
            fh.write(json.dumps({"winnerId": winner, "winnerName": winner, "isDraw": not alive and num_snakes > 1})
                     + "\n")
        if out is not None:
            print(f"game exported to {export} (replay-check it: battlesnake-rl conformance {export})", file=out)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="battlesnake-rl demo", description=__doc__)
    parser.add_argument("--ruleset", default="standard")
    parser.add_argument("--map", default="standard")
    parser.add_argument("--width", type=int, default=11)
    parser.add_argument("--height", type=int, default=11)
    parser.add_argument("--snakes", type=int, default=4)
    parser.add_argument("--bot", default="safe", choices=sorted(BOTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=25, help="print every N-th turn")
    parser.add_argument("--export", type=Path, default=Path("runs/demo/game.jsonl"),
                        help="write the game in the official CLI's export format ('' to skip)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be >= 1")
    settings = GameSettings(width=args.width, height=args.height, ruleset=args.ruleset, map=args.map)
    play(settings, args.snakes, args.bot, args.seed, every=args.every,
         export=args.export if str(args.export) else None)
    return 0


if __name__ == "__main__":
    np.seterr(all="raise")
    sys.exit(main())
