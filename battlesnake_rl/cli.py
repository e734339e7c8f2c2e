"""``battlesnake-rl`` — one command for the whole toolkit.

Each subcommand lives in the layer it belongs to and is imported only when used, so the game's commands never load
training or platform code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# name -> ("module" with a main(argv) function, or "module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("battlesnake_gym.demo", "play and draw a game between bots (no training needed)"),
    "conformance": ("battlesnake_gym.conformance", "check the engine against official traces and CLI exports"),
    "benchmark": ("battlesnake_gym.benchmark", "engine env-steps/s, one game alone and a batch of games"),
    "replay": ("battlesnake_gym.replay", "draw a game export (official CLI or ours) as text, a GIF or an HTML page"),
    "train": ("battlesnake_rllib.commands:train", "train a policy by self-play on RLlib (local, no AWS needed)"),
    "evaluate": ("battlesnake_server.evaluate:main", "play a trained model (raw or with search) against bots; win "
                                                     "rates with 95% CIs"),
    "sagemaker": ("sagemaker_rl.cli:main", "launch a SageMaker training job, or run the same job locally"),
    "serve": ("battlesnake_server.serve:main", "serve a trained policy (or a bot) to the Battlesnake engine over HTTP"),
    "play": ("battlesnake_server.referee:main", "referee full games between snake servers (HTTP) and bots"),
    "ladder": ("battlesnake_server.ladder:main", "round robin of bots, models (raw or searching) and snake servers; "
                                                 "ratings with intervals"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: battlesnake-rl COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "battlesnake-rl COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"battlesnake-rl: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    target = COMMANDS[name][0]
    module_name, _, function = target.partition(":")
    module = importlib.import_module(module_name)
    return int(getattr(module, function or "main")(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
