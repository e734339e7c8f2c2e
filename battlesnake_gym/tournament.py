"""Bots against bots: 1v1 matches, free-for-alls and the cost of one decision, all on batches of engine games.

How to run::

    python -m battlesnake_gym.tournament --games 1000          # round robin of every registered bot, 11x11 standard

Results to expect (1000 games a pairing, seats alternating): safe beats random in every game; greedy beats safe in
about 3 of 4; flood beats greedy in about 3 of 5 and safe in 24 of 25 (tests/test_bots_strength.py has the figures).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np

from .bots import BOTS, Bot, make_bot
from .engine import Games, GameSettings
from .seating import Seating

BotSpec = str | Bot


def _bot(spec: BotSpec, rng: np.random.Generator) -> Bot:
    """A bot from a registered name (seeded from ``rng``) or a bot callable as is."""
    if isinstance(spec, str):
        return make_bot(spec, int(rng.integers(2**63)))
    if not callable(spec):
        raise TypeError(f"a bot must be a registered name ({', '.join(BOTS)}) or a callable, got {spec!r}")
    return spec


def _play(bots: list[Bot], seating: Seating, settings: GameSettings, seed: int,
          max_turns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play one batch to its end, bot i in the snakes of player i of ``seating`` (``Seating.rotating``).

    Returns (winner (B,) the index of the winning bot or -1, finished (B,) bool, turns (B,) int).
    """
    batch, num_snakes = seating.num_games, seating.num_snakes
    games = Games(settings, num_snakes=num_snakes, batch_size=batch, seed=seed)
    rows = np.arange(batch)
    moves = np.empty((batch, num_snakes), np.int8)
    active = ~games.finished()
    for _ in range(max_turns):
        if not active.any():
            break
        seating.bot_moves(games, bots, moves)
        games.step(moves, mask=active)
        active &= ~games.finished()
    alive = games.alive()
    finished = ~active
    sole = finished & (alive.sum(axis=1) == 1)
    winner = np.where(sole, seating.player[rows, alive.argmax(axis=1)], -1)
    return winner, finished, games.state.turn.astype(np.int64)


def play_match(bot_a: BotSpec, bot_b: BotSpec, games: int = 512, seed: int = 0, *,
               settings: GameSettings | None = None, max_turns: int = 1000) -> dict:
    """``bot_a`` against ``bot_b`` in ``games`` 1v1 games played as one batch; ``bot_a`` is snake 0 in even games and
    snake 1 in odd ones.

    Bots are registered names (seeded from ``seed``) or bot callables. A game both snakes leave on the same turn, or
    one still running after ``max_turns`` turns, is a draw.

    Returns ``{"wins", "losses", "draws"}`` counted for ``bot_a``, plus ``"games"`` and ``"mean_turns"``.
    """
    if games < 1 or max_turns < 1:
        raise ValueError(f"games and max_turns must be >= 1, got {games} and {max_turns}")
    rng = np.random.default_rng(seed)
    bots = [_bot(bot_a, rng), _bot(bot_b, rng)]
    winner, _, turns = _play(bots, Seating.rotating(2, games), settings or GameSettings(), int(rng.integers(2**63)),
                             max_turns)
    wins, losses = int((winner == 0).sum()), int((winner == 1).sum())
    return {"wins": wins, "losses": losses, "draws": games - wins - losses, "games": games,
            "mean_turns": float(turns.mean())}


def play_free_for_all(bots: Sequence[BotSpec], games: int = 512, seed: int = 0, *,
                      settings: GameSettings | None = None, max_turns: int = 1000) -> dict:
    """Every bot in every game, seats rotated from game to game (bot i is snake (i + g) mod N in game g).

    Returns ``{"wins": [per bot], "draws", "games", "mean_turns"}``; a draw is a game with no sole survivor.
    """
    if len(bots) < 2 or games < 1 or max_turns < 1:
        raise ValueError(f"need >= 2 bots, games >= 1 and max_turns >= 1, got {len(bots)}, {games}, {max_turns}")
    rng = np.random.default_rng(seed)
    players = [_bot(spec, rng) for spec in bots]
    n = len(players)
    winner, _, turns = _play(players, Seating.rotating(n, games), settings or GameSettings(),
                             int(rng.integers(2**63)), max_turns)
    wins = [int((winner == i).sum()) for i in range(n)]
    return {"wins": wins, "draws": games - sum(wins), "games": games, "mean_turns": float(turns.mean())}


def decision_cost(bot: BotSpec, batch_size: int = 1024, num_snakes: int = 4, *, settings: GameSettings | None = None,
                  calls: int = 50, seed: int = 0) -> dict:
    """Seconds one call of ``bot`` takes on ``batch_size`` games of ``num_snakes`` (mid-game boards: the bot plays
    the games itself, finished ones are reset; only the bot's calls are timed, after one warm-up call)."""
    rng = np.random.default_rng(seed)
    policy = _bot(bot, rng)
    games = Games(settings or GameSettings(), num_snakes=num_snakes, batch_size=batch_size,
                  seed=int(rng.integers(2**63)))
    games.step(policy(games))  # compile
    spent = 0.0
    decisions = 0
    for _ in range(calls):
        start = time.perf_counter()
        moves = policy(games)
        spent += time.perf_counter() - start
        decisions += int((moves >= 0).sum())
        games.step(moves)
        games.reset(games.finished())
    return {"seconds_per_call": spent / calls, "seconds_per_decision": spent / max(decisions, 1),
            "decisions_per_call": decisions / calls}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m battlesnake_gym.tournament", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bots", nargs="+", default=list(BOTS), choices=list(BOTS))
    parser.add_argument("--games", type=int, default=1000, help="1v1 games per pairing (and free-for-all games)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=11)
    parser.add_argument("--ruleset", default="standard")
    args = parser.parse_args(argv)
    settings = GameSettings(width=args.size, height=args.size, ruleset=args.ruleset)

    # ---- 1v1 round robin
    print(f"1v1, {args.games} games a pairing, {args.size}x{args.size} {args.ruleset} (wins-losses-draws, row bot)")
    for i, a in enumerate(args.bots):
        for b in args.bots[i + 1:]:
            r = play_match(a, b, args.games, args.seed, settings=settings)
            print(f"  {a:>7} vs {b:<7} {r['wins']:5d}-{r['losses']}-{r['draws']}  "
                  f"win rate {r['wins'] / r['games']:.1%}, mean {r['mean_turns']:.0f} turns")

    # ---- free-for-all
    if len(args.bots) >= 2 and len(args.bots) <= settings.max_snakes():
        r = play_free_for_all(args.bots, args.games, args.seed, settings=settings)
        print(f"free-for-all, {args.games} games: " + ", ".join(f"{n} {w}" for n, w in zip(args.bots, r["wins"]))
              + f", no winner {r['draws']}")

    # ---- cost of a decision
    print(f"one call on 1024 games x 4 snakes, {args.size}x{args.size}:")
    for name in args.bots:
        c = decision_cost(name, settings=settings, seed=args.seed)
        print(f"  {name:>7} {c['seconds_per_call'] * 1e3:7.2f} ms a call, "
              f"{c['seconds_per_decision'] * 1e6:6.2f} us a snake decision")
    return 0


if __name__ == "__main__":
    sys.exit(main())
