"""What the server's safety layer adds to a policy's win rate against the bots.

How to run::

    python benchmarks/safety_layer.py --model runs/<name>                     # 100 games a pairing
    python benchmarks/safety_layer.py --model runs/<name> --games 200 --search-games 60 --json

Four players meet the bots of ``battlesnake_gym.evaluation`` (1v1 and 4-player free-for-alls against ``safe``,
``greedy`` and ``flood``, the model's trained board and rules, seats rotating, same seeds for every player):

- ``raw``: the exported policy alone (its greedy move; the export already masks moves into walls and bodies);
- ``layer``: the policy through ``SafetyLayer`` without search, as ``battlesnake-rl serve --search-ms 0`` plays;
- ``layer+search``: the same with rollouts (a fixed ``--rollouts`` per move rather than a time budget, so the result
  does not depend on the machine's speed; fewer games, ``--search-games``, as it is slower);
- ``flood``: the strongest bot, for scale.

Win rates come with 95% Wilson intervals. Results to expect: see the README's "Playing in the arena" section.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from battlesnake_gym.engine import Games
from battlesnake_gym.engine.state import select_games
from battlesnake_gym.evaluation import BotPolicy, evaluate
from battlesnake_server.players import ModelPlayer, load_model
from battlesnake_server.safety import SafetyLayer


class LayeredPolicy:
    """The model's probabilities through a ``SafetyLayer``, one snake at a time, as the server plays each request
    (``evaluate`` hands over the boards through ``set_games``)."""

    def __init__(self, player: ModelPlayer, layer: SafetyLayer):
        self.player, self.layer = player, layer
        self._where: tuple[Games, np.ndarray, np.ndarray] | None = None
        self.overrides = 0  # moves that differ from the policy's favourite
        self.decisions = 0

    def set_games(self, games: Games, rows: np.ndarray, slots: np.ndarray) -> None:
        self._where = (games, rows, slots)

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        games, rows, slots = self._where
        logits = self.player.policy.logits(obs, action_mask)  # (N, 4)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        moves = np.empty(len(rows), np.int64)
        for i, (b, s) in enumerate(zip(rows, slots)):
            single = Games.from_state(games.settings, select_games(games.state, int(b)))
            decision = self.layer.choose(single, int(s), probs[i], seed=int(games.state.turn[b]) * 1009 + int(b))
            moves[i] = decision.move
            self.overrides += decision.move != decision.policy_move
            self.decisions += 1
        return moves


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="exported policy, its folder or its run folder")
    p.add_argument("--games", type=int, default=100, help="games a pairing (raw, layer, flood)")
    p.add_argument("--search-games", type=int, default=40, help="games a pairing with search")
    p.add_argument("--rollouts", type=int, default=32, help="rollouts per move with search")
    p.add_argument("--opponents", default="safe,greedy,flood")
    p.add_argument("--modes", default="1v1,ffa4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    player = load_model(args.model)
    players = [
        ("raw", player.policy, args.games),
        ("layer", LayeredPolicy(player, SafetyLayer(search_ms=0)), args.games),
        ("layer+search", LayeredPolicy(player, SafetyLayer(search_ms=1e9, max_rollouts=args.rollouts)),
         args.search_games),
        ("flood", BotPolicy("flood", seed=args.seed), args.games),
    ]
    rows = []
    for name, policy, games in players:
        if games < 1:
            continue
        started = time.perf_counter()
        report = evaluate(policy, opponents=args.opponents.split(","), games=games, modes=args.modes.split(","),
                          settings=player.trained, encoder=player.encoder, seed=args.seed, max_turns=500)
        seconds = time.perf_counter() - started
        for r in report.results:
            lo, hi = r.win_interval
            rows.append({"player": name, "mode": r.mode, "opponent": r.opponent, "games": r.games,
                         "win_rate": r.win_rate, "win_interval": [lo, hi], "draws": r.draws,
                         "mean_turns": r.mean_turns, "seconds": round(seconds, 1),
                         "overrides": (getattr(policy, "overrides", 0) / max(getattr(policy, "decisions", 1), 1))})
        print(f"{name}: {seconds:.0f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": player.describe(), "rows": rows}, indent=2))
        return 0
    print(player.describe())
    print(f"{'player':13} {'mode':5} {'opponent':8} {'games':>5}  {'win rate [95% CI]':24} {'turns':>6}")
    for r in rows:
        lo, hi = r["win_interval"]
        print(f"{r['player']:13} {r['mode']:5} {r['opponent']:8} {r['games']:5d}  "
              f"{r['win_rate']:6.1%} [{lo:5.1%}, {hi:5.1%}]{'':5} {r['mean_turns']:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
