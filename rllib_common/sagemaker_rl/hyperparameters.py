"""SageMaker hyperparameters -> an entry point's command line, typed by the entry point's own argparse parser.

A job's hyperparameters are one flat JSON object. Three kinds of keys are accepted:

* a flag of the entry point, by its option name or its dest: ``num_games``, ``num-games`` -> ``--num-games``;
  a true boolean switches a ``store_true`` flag on, lists become several values;
* a dotted RLlib setting, ``rl.SECTION.KEY`` (``rl.training.lr``: ``config.training(lr=...)``), collected into the
  entry point's overrides flag as ``SECTION.KEY=<JSON>``;
* the Ray Tune-era names the archived starter pack and its blog posts used, translated: ``rl.training.config.KEY``
  (the section is found from the key), ``rl.training.stop.training_iteration``, ``num_iters`` (both: training
  iterations), ``rl.training.stop.time_total_s`` and ``rl.training.checkpoint_freq`` (mapped onto flags by the
  caller's ``aliases``; an entry point adds its own, e.g. the game's ``num_agents``).

The resource keys of those posts (``rl.training.config.num_workers``, ``num_cpus``, ``num_gpus``) and ``aws_region``
are the cluster's, not the entry point's: ``sagemaker_rl.cluster.ClusterSettings`` takes them out first.

Any other key is an error that names it, before anything starts: a misspelt hyperparameter must never be ignored.
Values are checked by the parser (``lr: "fast"`` fails as ``--lr: invalid float value``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import Any

#: Tune-era stop conditions and settings -> (flag dest, conversion)
TUNE_ALIASES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "rl.training.stop.training_iteration": ("iterations", int),
    "num_iters": ("iterations", int),  # the distributed-training blog post's name for the same stop condition
    "rl.training.stop.time_total_s": ("minutes", lambda seconds: float(seconds) / 60.0),
    "rl.training.checkpoint_freq": ("checkpoint_every", int),
}


class HyperparameterError(ValueError):
    """A hyperparameter the entry point does not know, or a value it cannot take."""


def to_argv(hyperparameters: Mapping[str, Any], parser: argparse.ArgumentParser, *, overrides_dest: str = "overrides",
            aliases: Mapping[str, tuple[str, Callable[[Any], Any]]] = TUNE_ALIASES) -> list[str]:
    """The command line giving ``parser`` these hyperparameters (``HyperparameterError`` names a bad one)."""
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    by_option = {opt.lstrip("-"): a for a in actions.values() for opt in a.option_strings if opt.startswith("--")}
    if overrides_dest not in actions:
        raise HyperparameterError(f"the entry point has no {overrides_dest!r} flag for dotted RLlib settings")
    argv: list[str] = []
    overrides: list[str] = []
    given: dict[str, str] = {}  # flag dest -> the hyperparameter that set it
    for key, value in hyperparameters.items():
        name = key
        if key in aliases:
            dest, convert = aliases[key]
            try:
                key, value = dest, convert(value)
            except (TypeError, ValueError):
                raise HyperparameterError(f"hyperparameter {key!r}: cannot use {value!r}") from None
        elif key.startswith("rl."):
            overrides.append(_dotted(key, value))
            continue
        action = actions.get(key) or actions.get(key.replace("-", "_")) or by_option.get(key)
        if action is None:
            known = sorted(by_option) + ["rl.SECTION.KEY", *aliases]
            raise HyperparameterError(f"unknown hyperparameter {key!r}; known: {', '.join(known)}")
        if action.dest in given and action.dest != overrides_dest:
            raise HyperparameterError(f"hyperparameters {given[action.dest]!r} and {name!r} both set "
                                      f"--{action.dest.replace('_', '-')}: give one of them")
        given[action.dest] = name
        if action.dest == overrides_dest:  # merged with the dotted keys into one flag
            overrides += _flag(action, key, value)[1:]
        else:
            argv += _flag(action, key, value)
    if overrides:
        argv += [next(o for o in actions[overrides_dest].option_strings if o.startswith("--")), *overrides]
    return argv


def _dotted(key: str, value: Any) -> str:
    parts = key.split(".")[1:]
    if len(parts) == 3 and parts[:2] == ["training", "config"]:  # rl.training.config.KEY: section from the key
        parts = ["config", parts[2]]
    if len(parts) != 2 or not all(parts):
        raise HyperparameterError(f"hyperparameter {key!r}: dotted RLlib settings look like rl.training.lr "
                                  f"or rl.training.config.lr")
    return f"{parts[0]}.{parts[1]}={json.dumps(value)}"


def _flag(action: argparse.Action, key: str, value: Any) -> list[str]:
    flag = next(opt for opt in action.option_strings if opt.startswith("--"))
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise HyperparameterError(f"hyperparameter {key!r} is a switch: give true or false, got {value!r}")
        return [flag] if value else []
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        if action.nargs not in ("*", "+"):
            raise HyperparameterError(f"hyperparameter {key!r} takes one value, got the list {value!r}")
        return [flag, *map(_text, value)]
    if isinstance(value, dict):
        raise HyperparameterError(f"hyperparameter {key!r} cannot be an object, got {value!r}")
    if action.nargs in ("*", "+") and isinstance(value, str) and "," in value:
        return [flag, *(v for v in value.split(",") if v)]  # "safe,greedy" for a list flag
    return [flag, _text(value)]


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)
