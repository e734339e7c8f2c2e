"""``/move`` latency of ``battlesnake-rl serve`` over loopback, with concurrent games, as the engine measures it.

How to run::

    python benchmarks/serve_latency.py                          # the bot's server
    python benchmarks/serve_latency.py --model runs/<name>      # the bot's server, then the model's
    python benchmarks/serve_latency.py --json --games 16 --parallel 8
    python benchmarks/serve_latency.py --model runs/<name> --games 32 --parallel 32 --scenario 11x11   # load

The server runs in its own process (``battlesnake-rl serve --host 127.0.0.1 --port 0``, default settings: the bot's
safety layer rolls out for 15 ms; a model with a value output looks ahead with the network search, 250 ms a move at
most). The referee of ``battlesnake-rl play`` plays ``--games`` complete games per scenario,
``--parallel`` at once; in each game ``--server-snakes`` seats are the server and the rest are bots (``safe`` and
``greedy`` in turn), played in the referee's process. A request's latency is its round trip as the referee sees it
(connection reused, as the engine's client does): request sent, reply read. Scenarios: 11x11 with 4 snakes, 25x25
with 16 snakes (``--scenario`` picks one), standard rules, ``game.timeout`` 500 ms (``--timeout-ms``).

Targets: p99 <= 50 ms (11x11, 4 snakes) and <= 150 ms (25x25, 16 snakes); no timeouts. Each scenario gets its own
server, whose counters say how many moves it answered at the deadline with the best move known then ("at
deadline") and how many replies it wrote more than 50 ms after their deadline ("late": the host starved it).
Results to expect on the 2-core development machine: see the README's "Playing in the arena" section (they move
with the host's load).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from battlesnake_gym.engine import GameSettings
from battlesnake_server.referee import Referee, Seat, play_many, summarize

SCENARIOS = {"11x11": ("11x11, 4 snakes", 11, 4, 50.0), "25x25": ("25x25, 16 snakes", 25, 16, 150.0)}


def start_server(extra: list[str]) -> tuple[subprocess.Popen, str]:
    """A ``battlesnake-rl serve`` process on a free loopback port, and its URL once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "battlesnake_rl.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                             "--log-level", "WARNING", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server did not start: {proc.stderr.read()[-2000:]}")
        if line.startswith("on http://"):
            return proc, re.search(r"(http://\S+)", line).group(1)


def measure(url: str, size: int, snakes: int, games: int, parallel: int, server_snakes: int, seed: int,
            timeout_ms: int = 500) -> dict:
    seats = [Seat(f"server-{i + 1}", url=url) for i in range(server_snakes)]
    seats += [Seat(f"bot-{i + 1}", bot=("safe", "greedy")[i % 2]) for i in range(snakes - server_snakes)]
    referee = Referee(seats, GameSettings(width=size, height=size), timeout_ms=timeout_ms, max_turns=400,
                      seed=seed)
    started = time.perf_counter()
    results = play_many(referee, games, parallel)
    summary = summarize(results)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="also measure the server playing this exported model")
    p.add_argument("--games", type=int, default=8, help="games per scenario")
    p.add_argument("--parallel", type=int, default=4, help="games played at once")
    p.add_argument("--server-snakes", type=int, default=1, help="seats of each game the server plays")
    p.add_argument("--search-ms", type=float, help="the server's --search-ms (default: its default)")
    p.add_argument("--scenario", choices=("both", *SCENARIOS), default="both", help="board(s) to play")
    p.add_argument("--timeout-ms", type=int, default=500, help="game.timeout of every game")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    players = [("bot", [])] + ([("model", ["--model", str(Path(args.model))])] if args.model else [])
    extra = ["--search-ms", str(args.search_ms)] if args.search_ms is not None else []
    rows = []
    for player, flags in players:
        for key, (name, size, snakes, target) in SCENARIOS.items():
            if args.scenario not in ("both", key):
                continue
            proc, url = start_server(flags + extra)  # one per scenario: its counters are the scenario's
            try:
                summary = measure(url, size, snakes, args.games, args.parallel, args.server_snakes, args.seed,
                                  args.timeout_ms)
            finally:
                proc.terminate()
                out, _ = proc.communicate(timeout=60)
            served = json.loads(out.splitlines()[-1])["served"]
            rows.append({"player": player, "scenario": name, "target_p99_ms": target, **summary,
                         "server": {k: served.get(k, -1) for k in ("deadline_moves", "late_replies", "errors")}})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'player':6}  {'scenario':17} {'games':>5} {'requests':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'target':>7} {'timeouts':>8} {'at deadline':>11} {'late':>5}")
        for r in rows:
            lat, server = r["latency_ms"], r["server"]
            print(f"{r['player']:6}  {r['scenario']:17} {r['games']:5d} {r['move_requests']:8d} {lat['p50']:7.1f} "
                  f"{lat['p99']:7.1f} {lat['max']:7.1f} {r['target_p99_ms']:7.0f} {r['timeouts']:8d} "
                  f"{server['deadline_moves']:11d} {server['late_replies']:5d}")
    met = all(r["latency_ms"]["p99"] <= r["target_p99_ms"] and r["timeouts"] == 0 for r in rows)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
