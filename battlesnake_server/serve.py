"""``battlesnake-rl serve``: the command line of the arena server (``httpd``) over a ``SnakeApp``.

How to run::

    battlesnake-rl serve --model runs/<name>            # the run's model/policy.pt and its config.json
    battlesnake-rl serve                                 # no model: the flood bot plays
    battlesnake-rl serve --model runs/<name> --port 8001 --color '#ff8800' --head smart-caterpillar --tail bolt

The options are the server's limits (see ``httpd``), the safety layer and search (see ``app``), and the snake's
appearance.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from .app import Appearance, SnakeApp
from .httpd import DEFAULT_PORT, ServerLimits, SnakeServer
from .request import Limits
from .safety import DEFAULT_SEARCH_MS, SafetyLayer
from .search import ARENA_TIMEOUT_MS, DEFAULT_NETWORK_SEARCH_MS, DEFAULT_TERRITORY_WEIGHT, NetworkSearch, SearchSettings


def build_app(args: argparse.Namespace) -> SnakeApp:
    """The ``SnakeApp`` the command-line options describe (loads the model, if any)."""
    from .players import load_model

    model = load_model(args.model, args.config) if args.model else None
    kind = args.search
    if kind == "auto":
        kind = "network" if model is not None and getattr(model.policy, "has_value", False) else "rollouts"
    if kind == "network" and model is None:
        raise ValueError("--search network needs a --model (a bot plays without one)")
    budget = args.search_ms if args.search_ms is not None else (
        DEFAULT_NETWORK_SEARCH_MS if kind == "network" else DEFAULT_SEARCH_MS)
    arena = ARENA_TIMEOUT_MS - args.latency_margin_ms
    if kind != "off" and budget > arena:
        raise ValueError(f"--search-ms {budget:g} is longer than the arena's {ARENA_TIMEOUT_MS} ms move timeout less "
                         f"the {args.latency_margin_ms:g} ms latency margin ({arena:g} ms)")
    search = None
    if kind == "network":  # a model without a value output is refused here, naming it
        search = NetworkSearch(model.policy, SearchSettings(max_nodes=args.search_nodes,
                                                            territory_weight=args.territory_weight))
    safety = SafetyLayer(enabled=not args.no_safety, search_ms=budget if kind == "rollouts" else 0.0)
    appearance = Appearance(author=args.author, color=args.color, head=args.head, tail=args.tail)
    return SnakeApp(model, bot=args.bot, safety=safety, appearance=appearance,
                    limits=Limits(max_body_bytes=args.max_body_bytes), latency_margin_ms=args.latency_margin_ms,
                    search=search, search_ms=budget if kind == "network" else DEFAULT_NETWORK_SEARCH_MS,
                    max_sessions=args.max_sessions, idle_timeout_s=args.idle_timeout, workers=args.workers)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="battlesnake-rl serve", description="Serve a trained policy (or a bot) to the "
                                "Battlesnake engine: the API v1 over HTTP.")
    p.add_argument("--model", help="exported policy: policy.pt / policy.onnx, its folder, or a run folder "
                                   "(default: no model, the bot plays)")
    p.add_argument("--config", help="the run's config.json (default: beside the model or in its parent folder)")
    p.add_argument("--bot", default="flood", help="bot that plays without a model or where it cannot "
                                                  "(random, safe, greedy, flood; default flood)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: reachable by the arena)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--color", default=Appearance.color, help="snake colour, #rrggbb")
    p.add_argument("--head", default=Appearance.head, help="head customization name")
    p.add_argument("--tail", default=Appearance.tail, help="tail customization name")
    p.add_argument("--author", default="", help="author shown by the arena")
    p.add_argument("--no-safety", action="store_true", help="play the raw policy (no safety layer)")
    p.add_argument("--search", choices=("auto", "network", "rollouts", "off"), default="auto",
                   help="network: look ahead with the model's value and move priors (needs a model exported with a "
                        "value output); rollouts: the safety layer's engine rollouts; auto (default): network when "
                        "the model has a value output, else rollouts")
    p.add_argument("--search-ms", type=float, default=None,
                   help=f"search time per move in ms (default {DEFAULT_NETWORK_SEARCH_MS:g} for network, "
                        f"{DEFAULT_SEARCH_MS:g} for rollouts); the move's deadline caps it")
    p.add_argument("--search-nodes", type=int, default=SearchSettings.max_nodes,
                   help="network search: boards judged per move at most")
    p.add_argument("--territory-weight", type=float, default=DEFAULT_TERRITORY_WEIGHT,
                   help="network search: weight of the territory score in the leaves' value, 0..1 (0: the network's "
                        f"value alone; default {DEFAULT_TERRITORY_WEIGHT:g})")
    p.add_argument("--latency-margin-ms", type=float, default=100.0,
                   help="taken off game.timeout for the network (default 100)")
    p.add_argument("--max-body-bytes", type=int, default=Limits.max_body_bytes, help="largest request body")
    defaults = ServerLimits()
    p.add_argument("--max-connections", type=int, default=defaults.max_connections,
                   help=f"open connections at most (default {defaults.max_connections}); beyond, the one waiting "
                        f"longest without a complete request makes room, else a 503")
    p.add_argument("--max-client-connections", type=int, default=defaults.max_client_connections,
                   help=f"open connections per client address at most (default {defaults.max_client_connections})")
    p.add_argument("--request-timeout", type=float, default=defaults.request_timeout_s,
                   help=f"seconds a request (headers and body) may take to arrive from its first byte (default "
                        f"{defaults.request_timeout_s:g})")
    p.add_argument("--keep-alive", type=float, default=defaults.keep_alive_s,
                   help=f"seconds a connection may wait for its next request (default {defaults.keep_alive_s:g})")
    p.add_argument("--workers", type=int, default=4, help="threads computing moves (default 4)")
    p.add_argument("--max-sessions", type=int, default=1024, help="games remembered at most")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds before an idle game is forgotten")
    p.add_argument("--log-level", default="INFO", help="DEBUG logs every request")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = build_app(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app.warm_up()
    try:
        limits = ServerLimits(max_connections=args.max_connections,
                              max_client_connections=args.max_client_connections,
                              request_timeout_s=args.request_timeout, keep_alive_s=args.keep_alive)
        server = SnakeServer((args.host, args.port), app, limits)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"serving {app.describe()}\non {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(json.dumps({"served": {**app.counters, **server.stats}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
