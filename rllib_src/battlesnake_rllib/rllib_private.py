"""The private parts of RLlib's env runner (Ray 2.60) that ``BatchedEnvRunner`` reaches, in one place.

The batched runner replaces ``SingleAgentEnvRunner.sample`` but keeps the parent's bookkeeping (sampled-step counts,
episode metrics, checkpoint components), whose only entry points are private. Each function below names the private
method or attribute it uses and why no public one does the job, so that an RLlib upgrade that renames one breaks
here, in one file (``tests/test_training.py`` and ``tests/test_opponent_pool.py`` exercise every one of them).
"""

from __future__ import annotations

from typing import Any


def wants_component(runner: Any, name: str, components: Any, not_components: Any) -> bool:
    """Whether ``get_state(components, not_components)`` asks for the runner's component ``name``
    (``Checkpointable._check_component``).

    Needed because the runner adds its own component (curriculum stage, policy snapshots) to the parent's state, and
    RLlib asks for subsets of the state (e.g. only the module when it syncs weights): the component must follow the
    same filter as the parent's own, and RLlib offers the filter only as this private method.
    """
    return runner._check_component(name, components, not_components)


def count_sampled(runner: Any, env_steps: int, episodes_done: int) -> None:
    """Log a sample() call's env, agent and module steps and finished episodes, per call and lifetime, under RLlib's
    metric keys (``SingleAgentEnvRunner._increase_sampled_metrics``).

    Needed because PPO stops sampling on these counts and the throughput figures come from them; the parent logs them
    only inside its own sampling loop, which the batched runner replaces.
    """
    runner._increase_sampled_metrics(env_steps, episodes_done)


def log_episode(runner: Any, length: int, episode_return: float, seconds: float) -> None:
    """Log one finished episode's length, return and duration with RLlib's smoothing window (shared among the
    runners) and keys (``SingleAgentEnvRunner._log_episode_metrics``).

    Needed because the parent logs them only for episodes its own loop ended; the batched runner logs each snake's
    life as it ends.
    """
    runner._log_episode_metrics(length, episode_return, seconds)


def forget_episodes_for_metrics(runner: Any) -> None:
    """Empty the parent's lists of episodes whose metrics ``get_metrics`` would add up
    (``_done_episodes_for_metrics``, ``_ongoing_episodes_for_metrics``).

    Needed because the batched runner logs every life as it ends (``log_episode``) and never keeps its chunks there:
    whatever RLlib put in these lists must not be counted a second time.
    """
    runner._done_episodes_for_metrics.clear()
    runner._ongoing_episodes_for_metrics.clear()
