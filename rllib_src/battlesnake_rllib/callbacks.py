"""What the driver steers in its env runners while training: the curriculum stage and the past-policy snapshots.

The driver decides; every env runner follows. Each decision goes to all of them, the local one and the remote ones on
any Ray node, through ``algorithm.env_runner_group.foreach_env_runner`` (``BatchedEnvRunner.set_curriculum_stage``,
``add_snapshot`` and ``set_snapshots``):

- when the algorithm is built: the curriculum's first stage, and the initial policy as snapshot 0;
- after iteration n (``on_train_result``): the stage of iteration n + 1 (``stage_at``), and, when n is a multiple of
  ``snapshot_every``, a snapshot of the learner's weights (inference-only part) as snapshot n;
- after a restore (``Algorithm.from_checkpoint``, ``algo.restore``): the stage of the restored iteration, and the
  snapshots the checkpoint kept in the local env runner's state (a run without a local env runner starts a new pool
  from the restored weights);
- to runners RLlib restarted after a failure (``on_env_runners_recreated``): the current stage and snapshots.

The stage is a pure function of the iteration count, so a resumed run plays the stage it stopped in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID

from .settings import BatchSettings, CurriculumStage


def stage_at(stages: Sequence[CurriculumStage], iterations_done: int) -> int:
    """The curriculum stage of the iteration after ``iterations_done`` finished ones (each stage but the last
    lasts its ``iterations``; the last one never ends)."""
    end = 0
    for index, stage in enumerate(stages[:-1]):
        end += int(stage.iterations)
        if iterations_done < end:
            return index
    return len(stages) - 1


def learner_weights(algorithm) -> dict[str, Any]:
    """The learner's current policy weights, the inference-only part that env runners' modules hold (numpy)."""
    path = f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{DEFAULT_MODULE_ID}"
    state = algorithm.learner_group.get_state(components=path, inference_only=True)
    return state[COMPONENT_LEARNER][COMPONENT_RL_MODULE][DEFAULT_MODULE_ID]


class BattlesnakeCallbacks(RLlibCallback):
    """Sends the driver's curriculum stage and policy snapshots to every env runner (see the module docstring).

    ``build_config`` installs it when the run's ``BatchSettings`` have a ``curriculum`` or ``past_policies``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool: list[tuple[int, dict[str, Any]]] = []  # (snapshot id = iteration, weights), oldest first

    def on_algorithm_init(self, *, algorithm, metrics_logger=None, **kwargs) -> None:
        # RLlib calls no hook once Algorithm.from_checkpoint() has restored a state into the new algorithm (and
        # on_checkpoint_loaded only from Trainable.restore), yet the runners must play the restored stage and
        # snapshots from the first resumed iteration on: so this algorithm's restore tells them afterwards.
        restore = algorithm.restore_from_path

        def restore_then_steer(*args, **kw):
            result = restore(*args, **kw)
            self._after_restore(algorithm)
            return result

        algorithm.restore_from_path = restore_then_steer
        self._set_stage(algorithm)
        if self._capacity(algorithm):
            self._add_snapshot(algorithm)

    def on_train_result(self, *, algorithm, metrics_logger=None, result: dict, **kwargs) -> None:
        self._set_stage(algorithm)
        every = BatchSettings.of(algorithm.config).snapshot_every
        if self._capacity(algorithm) and every and algorithm.iteration % every == 0:
            self._add_snapshot(algorithm)

    def on_env_runners_recreated(self, *, algorithm, env_runner_group, env_runner_indices, is_evaluation,
                                 **kwargs) -> None:
        if is_evaluation:
            return
        self._set_stage(algorithm, env_runner_indices)
        if self._capacity(algorithm):
            pool = list(self.pool)
            env_runner_group.foreach_env_runner(lambda runner: runner.set_snapshots(pool), local_env_runner=False,
                                                remote_worker_ids=env_runner_indices)

    # ------------------------------------------------------------------ what goes to the runners

    @staticmethod
    def _capacity(algorithm) -> int:
        return BatchSettings.of(algorithm.config).past_policies

    @staticmethod
    def _set_stage(algorithm, remote_ids: list[int] | None = None) -> None:
        stages = BatchSettings.of(algorithm.config).curriculum
        if not stages:
            return
        stage = stage_at(stages, algorithm.iteration)
        algorithm.env_runner_group.foreach_env_runner(lambda runner: runner.set_curriculum_stage(stage),
                                                      local_env_runner=remote_ids is None,
                                                      remote_worker_ids=remote_ids)

    def _add_snapshot(self, algorithm) -> None:
        snapshot_id, weights = int(algorithm.iteration), learner_weights(algorithm)
        self.pool = [*self.pool, (snapshot_id, weights)][-self._capacity(algorithm):]
        algorithm.env_runner_group.foreach_env_runner(lambda runner: runner.add_snapshot(snapshot_id, weights))

    def _after_restore(self, algorithm) -> None:
        self._set_stage(algorithm)
        if not self._capacity(algorithm):
            return
        local = algorithm.env_runner_group.local_env_runner
        kept = local.snapshot_states() if local is not None else []
        if kept:  # the checkpoint's snapshots, restored into the local runner
            self.pool = kept
            algorithm.env_runner_group.foreach_env_runner(lambda runner: runner.set_snapshots(kept),
                                                          local_env_runner=False)
        else:
            self.pool = []
            algorithm.env_runner_group.foreach_env_runner(lambda runner: runner.set_snapshots([]))
            self._add_snapshot(algorithm)
