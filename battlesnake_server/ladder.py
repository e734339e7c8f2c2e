"""``battlesnake-rl ladder``: a round robin among bots, exported models (raw or searching) and snake servers, rated.

How to run::

    battlesnake-rl ladder --bot safe --bot greedy --bot flood --model mine=runs/NAME \\
        --search mine+search=runs/NAME --games 40 --png ladder.png
    battlesnake-rl ladder --bot flood --url theirs=http://127.0.0.1:8001 --model mine=runs/NAME --games 20

Every pair of entrants plays ``--games`` 1v1 games (11x11 standard unless told otherwise), seats alternating, on
boards fixed by ``--seed`` (each pairing its own). Pairs of in-process entrants (bots, models, searching models)
play as one batch on the engine; a pair with a snake server (``--url``) is refereed over HTTP game by game
(``battlesnake_server.referee``, as the official CLI plays), the in-process entrant served from this process.
Ratings are Bradley-Terry strengths fitted by maximum likelihood (a draw counts half a win to each side), on the Elo
scale (400 points: 10 to 1 odds) with the entrants' mean at 1500, and 95% intervals from a bootstrap over each
pairing's games. ``--png`` draws them; ``--json`` prints everything.

Entrants:

- ``--bot NAME``: a heuristic bot (random, safe, greedy, flood);
- ``--model [LABEL=]PATH``: an exported model's raw policy (its greedy move);
- ``--search [LABEL=]PATH``: the same model deciding with the network search (``--search-nodes`` boards a move in
  process; served to an HTTP opponent with ``--search-ms`` a move);
- ``--url [LABEL=]URL``: a Battlesnake API v1 server (anyone's snake).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from battlesnake_gym.bots import BOTS, make_bot
from battlesnake_gym.engine import Games, GameSettings
from battlesnake_gym.evaluation import WIN, policy_outcomes, wilson_interval
from battlesnake_gym.observations import action_mask
from battlesnake_gym.seating import Seating
from battlesnake_policy import ModelError, load_model

from .search import DEFAULT_TERRITORY_WEIGHT, NetworkSearch, SearchSettings

#: The entrants' mean rating.
MEAN_RATING = 1500.0


@dataclass
class Entrant:
    """One entrant: what it is (``kind``: bot, model, search or url) and how to reach it."""

    name: str
    kind: str
    target: str  # the bot's name, the model's path or the server's URL
    model: Any = None  # battlesnake_policy.Model for models
    search: NetworkSearch | None = None

    def moves(self, games: Games, rows: np.ndarray, slots: np.ndarray, bot_seed: int) -> np.ndarray:
        """(N,) moves of snake ``slots[i]`` of game ``rows[i]``, for in-process entrants."""
        if self.kind == "bot":
            return make_bot(self.target, bot_seed)(games)[rows, slots].astype(np.int64)
        encoder = self.model.spec.make_encoder()
        if self.kind == "search":
            return np.array([r.move for r in self.search.choose_many(games, slots, encoder, rows=rows)], np.int64)
        obs = encoder.encode(games)[rows, slots]
        return np.asarray(self.model.policy(obs, action_mask(games)[rows, slots]), np.int64)


@dataclass
class Pairing:
    """Two entrants' games: ``outcomes`` are the first entrant's (1 win, 0 draw, -1 loss), one per game."""

    first: str
    second: str
    outcomes: list[int] = field(default_factory=list)
    timeouts: int = 0  # /move requests of HTTP games that came back late or broken

    @property
    def score(self) -> float:
        """The first entrant's share of the points (a draw is half a point)."""
        return float(np.mean([(o + 1) / 2 for o in self.outcomes])) if self.outcomes else float("nan")


def _labelled(text: str) -> tuple[str | None, str]:
    label, sep, rest = text.partition("=")
    if sep and label and "/" not in label and ":" not in label:
        return label, rest
    return None, text


def build_entrants(args: argparse.Namespace) -> list[Entrant]:
    """The entrants the options name, loaded and checked (unknown bots, models that cannot search: errors)."""
    entrants: list[Entrant] = []
    for bot in args.bot or []:
        if bot not in BOTS:
            raise ValueError(f"unknown bot {bot!r}; known: {', '.join(BOTS)}")
        entrants.append(Entrant(bot, "bot", bot))
    settings = SearchSettings(max_nodes=args.search_nodes, territory_weight=args.territory_weight)
    for kind, values in (("model", args.model or []), ("search", args.search or [])):
        for text in values:
            label, path = _labelled(text)
            model = load_model(path, num_threads=1)
            name = label or f"{Path(path).name}{'+search' if kind == 'search' else ''}"
            search = NetworkSearch(model.policy, settings) if kind == "search" else None
            entrants.append(Entrant(name, kind, path, model, search))
    for text in args.url or []:
        label, url = _labelled(text)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--url {text!r} is not an http(s) URL")
        entrants.append(Entrant(label or url, "url", url))
    names = [e.name for e in entrants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"entrants need distinct names, {duplicates} repeat: label them, e.g. --model mine=PATH")
    if len(entrants) < 2:
        raise ValueError(f"a ladder needs at least two entrants, got {len(entrants)}")
    return entrants


def _seeds(seed: int, a: str, b: str) -> tuple[int, int, int]:
    key = [seed, zlib.crc32(a.encode()), zlib.crc32(b.encode())]
    return tuple(int(x >> np.uint64(1)) for x in np.random.SeedSequence(key).generate_state(3, np.uint64))


def play_in_process(a: Entrant, b: Entrant, games: int, settings: GameSettings, seed: int,
                    max_turns: int) -> Pairing:
    """``games`` games of two in-process entrants as one batch; ``a`` is snake 0 in even games, 1 in odd ones."""
    game_seed, seed_a, seed_b = _seeds(seed, a.name, b.name)
    board = Games(settings, num_snakes=2, batch_size=games, seed=game_seed)
    rows = np.arange(games)
    seating = Seating.rotating(2, games)
    slot_a, slot_b = seating.seat_of(0), seating.seat_of(1)  # (B,) each entrant's snake: a's is g mod 2
    running = ~board.finished()
    for _ in range(max_turns):
        if not running.any():
            break
        moves = np.full((games, 2), -1, np.int64)
        alive = board.alive()
        for entrant, slot, bot_seed in ((a, slot_a, seed_a), (b, slot_b, seed_b)):
            playing = np.flatnonzero(running & alive[rows, slot])
            if playing.size:
                moves[playing, slot[playing]] = entrant.moves(board, playing, slot[playing], bot_seed)
        running &= ~board.step(moves, mask=running)
    outcomes = policy_outcomes(board, slot_a)
    return Pairing(a.name, b.name, [int(o) for o in outcomes])


def play_over_http(a: Entrant, b: Entrant, games: int, settings: GameSettings, seed: int, max_turns: int,
                   timeout_ms: int, search_ms: float) -> Pairing:
    """Games refereed over HTTP; in-process entrants are served from a thread of this process for them."""
    from .app import SnakeApp
    from .httpd import start_in_thread
    from .players import ModelPlayer
    from .referee import Referee, Seat

    servers = []

    def seat(entrant: Entrant) -> Seat:
        if entrant.kind == "url":
            return Seat(entrant.name, url=entrant.target)
        if entrant.kind == "bot":
            return Seat(entrant.name, bot=entrant.target)
        player = ModelPlayer(entrant.model.policy, entrant.model.spec, entrant.model.source)
        app = SnakeApp(player, search=entrant.search, search_ms=search_ms)
        server = start_in_thread(app)
        servers.append(server)
        return Seat(entrant.name, url=server.url)

    try:
        seats = [seat(a), seat(b)]
        pairing = Pairing(a.name, b.name)
        seating = Seating.rotating(2, games)  # a is snake 0 in even games and snake 1 in odd ones
        first_seat = seating.seat_of(0)  # (games,) a's snake
        for g in range(games):
            order = [seats[player] for player in seating.player[g]]
            result = Referee(order, settings, timeout_ms=timeout_ms, max_turns=max_turns, seed=seed).play(g)
            first = int(first_seat[g])
            pairing.outcomes.append(0 if result.winner is None else (1 if result.winner == first else -1))
            pairing.timeouts += result.timeouts
        return pairing
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


# ---------------------------------------------------------------------------------------------------- ratings


def bradley_terry(names: Sequence[str], pairings: Sequence[Pairing], iterations: int = 2000) -> np.ndarray:
    """(E,) Elo-scale ratings (mean ``MEAN_RATING``) maximising the Bradley-Terry likelihood of the results; a draw
    is half a win to each side. A small prior (one drawn game against an average entrant each) keeps the fit finite
    when an entrant won or lost everything."""
    index = {n: i for i, n in enumerate(names)}
    e = len(names)
    wins = np.full((e, e), 0.0)  # wins[i, j]: points i took from j
    for p in pairings:
        i, j = index[p.first], index[p.second]
        for o in p.outcomes:
            wins[i, j] += (o + 1) / 2
            wins[j, i] += (1 - o) / 2
    games = wins + wins.T
    strength = np.ones(e)
    for _ in range(iterations):  # Hunter's MM updates, with the prior as half a point each way against strength 1
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1) + 1.0 / (strength + 1.0)
        updated = (wins.sum(axis=1) + 0.5) / denominator
        updated /= np.exp(np.mean(np.log(updated)))
        if np.allclose(updated, strength, rtol=1e-10, atol=0):
            strength = updated
            break
        strength = updated
    ratings = 400.0 * np.log10(strength)
    return ratings - ratings.mean() + MEAN_RATING


def rate(names: Sequence[str], pairings: Sequence[Pairing], samples: int = 200, seed: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """(ratings (E,), 95% intervals (E, 2)) with a bootstrap over each pairing's games."""
    ratings = bradley_terry(names, pairings)
    rng = np.random.default_rng(seed)
    draws = np.empty((samples, len(names)))
    for k in range(samples):
        resampled = [Pairing(p.first, p.second, list(rng.choice(p.outcomes, len(p.outcomes))) if p.outcomes else [])
                     for p in pairings]
        draws[k] = bradley_terry(names, resampled, iterations=500)
    return ratings, np.percentile(draws, [2.5, 97.5], axis=0).T


def draw_chart(names: Sequence[str], ratings: np.ndarray, intervals: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(ratings)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.errorbar(ratings[order], y, xerr=[ratings[order] - intervals[order, 0], intervals[order, 1] - ratings[order]],
                fmt="o", capsize=4, color="tab:blue")
    ax.set_yticks(y, [names[i] for i in order])
    ax.axvline(MEAN_RATING, color="grey", linewidth=0.6)
    ax.set(xlabel="rating (Bradley-Terry, Elo scale; 95% bootstrap interval)", title="battlesnake-rl ladder")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------- command


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="battlesnake-rl ladder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bot", action="append", help="a bot entrant (repeat for more)")
    p.add_argument("--model", action="append", help="[LABEL=]PATH: an exported model's raw policy")
    p.add_argument("--search", action="append", help="[LABEL=]PATH: an exported model with the network search")
    p.add_argument("--url", action="append", help="[LABEL=]URL: a snake server (Battlesnake API v1)")
    p.add_argument("--games", type=int, default=40, help="games a pairing (seats alternate)")
    p.add_argument("-W", "--width", type=int, default=11)
    p.add_argument("-H", "--height", type=int, default=11)
    p.add_argument("-g", "--ruleset", default="standard")
    p.add_argument("-m", "--map", default="standard")
    p.add_argument("--max-turns", type=int, default=500, help="a game still running then is a draw")
    p.add_argument("--search-nodes", type=int, default=500, help="searching entrants in process: boards a move")
    p.add_argument("--territory-weight", type=float, default=DEFAULT_TERRITORY_WEIGHT,
                   help="searching entrants: share of a leaf's value that is the territory score")
    p.add_argument("--timeout", type=int, default=500, help="game.timeout (ms) of games over HTTP")
    p.add_argument("--search-ms", type=float, default=250.0, help="searching entrants served over HTTP: ms a move")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", type=Path, help="draw the ratings here")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.games < 1 or args.max_turns < 1 or args.search_nodes < 1:
            raise ValueError(f"--games, --max-turns and --search-nodes must be >= 1, got {args.games}, "
                             f"{args.max_turns} and {args.search_nodes}")
        if args.search_ms <= 0 or args.search_ms >= args.timeout:
            raise ValueError(f"--search-ms {args.search_ms:g} must be > 0 and shorter than --timeout {args.timeout}")
        settings = GameSettings(width=args.width, height=args.height, ruleset=args.ruleset, map=args.map)
        entrants = build_entrants(args)
    except (ValueError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pairings = []
    for i, a in enumerate(entrants):
        for b in entrants[i + 1:]:
            if "url" in (a.kind, b.kind):
                pairing = play_over_http(a, b, args.games, settings, args.seed, args.max_turns, args.timeout,
                                         args.search_ms)
            else:
                pairing = play_in_process(a, b, args.games, settings, args.seed, args.max_turns)
            pairings.append(pairing)
            if not args.json:
                wins, losses = pairing.outcomes.count(WIN), pairing.outcomes.count(-1)
                print(f"{a.name} vs {b.name}: {wins}-{len(pairing.outcomes) - wins - losses}-{losses}"
                      + (f" ({pairing.timeouts} timeouts)" if pairing.timeouts else ""), flush=True)
    names = [e.name for e in entrants]
    ratings, intervals = rate(names, pairings, seed=args.seed)
    order = np.argsort(-ratings)
    report = {"settings": {"width": args.width, "height": args.height, "ruleset": args.ruleset, "map": args.map,
                           "games_per_pairing": args.games},
              "ratings": [{"name": names[i], "kind": entrants[i].kind, "rating": round(float(ratings[i]), 1),
                           "interval": [round(float(v), 1) for v in intervals[i]]} for i in order],
              "pairings": [{"first": p.first, "second": p.second, "wins": p.outcomes.count(WIN),
                            "draws": p.outcomes.count(0), "losses": p.outcomes.count(-1),
                            "score": p.score, "score_interval": list(wilson_interval(
                                int(round(p.score * len(p.outcomes))), len(p.outcomes))),
                            "timeouts": p.timeouts} for p in pairings]}
    if args.png:
        report["png"] = str(draw_chart(names, ratings, intervals, args.png))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        width = max(len(n) for n in names)
        print(f"\n{'rank':>4}  {'entrant'.ljust(width)}  {'rating':>6}  95% interval")
        for rank, i in enumerate(order, 1):
            print(f"{rank:>4}  {names[i].ljust(width)}  {ratings[i]:6.0f}  [{intervals[i, 0]:.0f}, "
                  f"{intervals[i, 1]:.0f}]")
        if args.png:
            print(f"chart: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
