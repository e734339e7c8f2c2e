"""``battlesnake-rl evaluate``: an exported model against the bots, raw or with the network search, in-process.

How to run::

    battlesnake-rl evaluate --model runs/NAME                                  # the raw policy, 200 games a pairing
    battlesnake-rl evaluate --model runs/NAME --search-nodes 500 --games 100   # with the network search

The raw policy plays its greedy move (the export masks moves into walls and bodies). With ``--search-nodes N`` the
network search decides every move within N judged boards (a budget that does not depend on the machine's speed, so
figures are comparable); all games of a pairing search together, one engine step and one forward pass a level.
Results: win/draw/loss with 95% Wilson intervals per (mode, opponent) pairing (``battlesnake_gym.evaluation``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from battlesnake_gym.engine import Games
from battlesnake_gym.evaluation import evaluate as run_evaluation
from battlesnake_gym.observations import ObservationEncoder
from battlesnake_policy import ModelError, load_model

from .search import DEFAULT_TERRITORY_WEIGHT, NetworkSearch, SearchSettings


class SearchPolicy:
    """The network search as an evaluation policy (``evaluate`` hands it the boards through ``set_games``).

    Every call searches all the snakes it is asked about together (``NetworkSearch.choose_many``). ``depths`` and
    ``nodes`` collect what each decision took.
    """

    def __init__(self, search: NetworkSearch, encoder: ObservationEncoder):
        self.search, self.encoder = search, encoder
        self._where: tuple[Games, np.ndarray, np.ndarray] | None = None
        self.depths: list[int] = []
        self.nodes: list[int] = []

    def set_games(self, games: Games, rows: np.ndarray, slots: np.ndarray) -> None:
        self._where = (games, rows, slots)

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray) -> np.ndarray:
        if self._where is None:
            raise ValueError("a SearchPolicy needs the boards: call set_games(games, rows, slots) first")
        games, rows, slots = self._where
        results = self.search.choose_many(games, slots, self.encoder, rows=rows)
        self.depths += [r.depth for r in results]
        self.nodes += [r.nodes for r in results]
        return np.array([r.move for r in results], np.int64)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="battlesnake-rl evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="exported model (.pt, .onnx), its folder or a run folder")
    p.add_argument("--opponents", default="safe,greedy,flood", help="comma-separated bot names")
    p.add_argument("--games", type=int, default=200, help="games per opponent and mode")
    p.add_argument("--modes", default="1v1,ffa4", help="1v1 and/or ffa4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-turns", type=int, default=None, help="a game still running then is a draw (default: the "
                                                                  "model's training cut)")
    p.add_argument("--search-nodes", type=int, default=0,
                   help="decide every move with the network search, within this many judged boards (0: the raw "
                        "policy)")
    p.add_argument("--territory-weight", type=float, default=DEFAULT_TERRITORY_WEIGHT,
                   help="search: share of a leaf's value that is the territory score (0: the network's value alone)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.search_nodes < 0:
            raise ValueError(f"--search-nodes must be >= 0, got {args.search_nodes}")
        model = load_model(args.model)
        spec = model.spec
        encoder = spec.make_encoder()
        policy = model.policy
        search_policy = None
        if args.search_nodes:
            search = NetworkSearch(model.policy, SearchSettings(max_nodes=args.search_nodes,
                                                                territory_weight=args.territory_weight))
            policy = search_policy = SearchPolicy(search, encoder)
        report = run_evaluation(policy, opponents=args.opponents.split(","), games=args.games,
                                modes=args.modes.split(","), settings=spec.settings(), encoder=encoder,
                                seed=args.seed, max_turns=args.max_turns or spec.max_turns)
    except (ValueError, FileNotFoundError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = report.to_dict()
    if search_policy is not None:
        out["search"] = {"max_nodes": args.search_nodes, "territory_weight": args.territory_weight,
                         "mean_depth": float(np.mean(search_policy.depths)),
                         "mean_nodes": float(np.mean(search_policy.nodes))}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(report.table())
        if search_policy is not None:
            s = out["search"]
            print(f"search: at most {args.search_nodes} boards a move, mean depth {s['mean_depth']:.1f} turns, "
                  f"mean {s['mean_nodes']:.0f} boards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
