"""Past versions of the policy in the opponent pool: snapshot seats play the snapshot they drew, never become
episodes, and the driver's snapshots reach remote runners and survive a resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib")
torch = pytest.importorskip("torch")

from battlesnake_rllib.config import ConfigError, TrainArgs, build_config  # noqa: E402
from battlesnake_rllib.sampler import BatchedEnvRunner  # noqa: E402
from battlesnake_rllib.settings import BatchSettings  # noqa: E402

LEFT, RIGHT = 2, 3


def _args(**overrides) -> TrainArgs:
    values = dict(width=7, height=7, num_snakes=4, view=7, num_games=8, max_turns=30, steps_per_sample=8,
                  train_batch_size=256, minibatch_size=128, num_epochs=1, conv_filters=[4], hidden=16, seed=2,
                  opponents=["past"], opponent_games=0.5, past_policies=2, snapshot_every=1)
    return TrainArgs(**{**values, **overrides})


def _always(runner: BatchedEnvRunner, action: int) -> dict:
    """The runner's current weights with a policy bias that makes ``action`` the only likely move when allowed."""
    state = {k: v.copy() for k, v in runner.module.get_state().items()}
    state["pi.bias"] = np.full(4, -40.0, np.float32)
    state["pi.bias"][action] = 40.0
    return state


def _record_steps(runner: BatchedEnvRunner) -> list:
    """Every batch step the runner takes, as (alive before, action mask before, joint actions, snapshot slot of
    each seat)."""
    steps = []
    step = runner.batch.step

    def recording_step(actions, mask=None):
        steps.append((runner.batch.games.alive().copy(), runner.batch.action_mask.copy(), np.array(actions),
                      runner.pool.past_slot.copy()))
        return step(actions, mask)

    runner.batch.step = recording_step
    return steps


def test_past_seats_play_their_snapshot_and_only_the_learning_seat_becomes_episodes() -> None:
    runner = BatchedEnvRunner(config=build_config(_args()))
    assert runner.add_snapshot(7, _always(runner, LEFT)) == [7]
    steps = _record_steps(runner)
    episodes = runner.sample(num_timesteps=400) + runner.sample(num_timesteps=400)

    past = np.zeros((8, 4), np.bool_)
    past[:4, 1:] = True  # half the games, every seat but the learner's
    assert np.array_equal(runner.pool.past_seat, past)
    chose_left = {True: [], False: []}  # past seat or not -> whether each move with left allowed was left
    for alive, mask, actions, _ in steps:
        can_go_left = alive & (mask[..., LEFT] > 0)
        for is_past in (True, False):
            chose_left[is_past] += list(actions[can_go_left & (past == is_past)] == LEFT)
    assert len(chose_left[True]) > 50 and all(chose_left[True])
    assert np.mean(chose_left[False]) < 0.6  # the learning policy (fresh weights) is not the snapshot

    slots = {e.custom_data["slot"] for e in episodes}
    assert not any(past[b, s] for b, s in slots)
    assert {b for b, s in slots} == set(range(8))
    # Only the learning seats' steps are counted and handed to RLlib.
    learner_steps = sum(int((alive & ~past).sum()) for alive, *_ in steps)
    assert sum(len(e) for e in episodes) == learner_steps


def test_the_runner_keeps_the_newest_snapshots_and_each_past_seat_plays_the_one_it_drew() -> None:
    runner = BatchedEnvRunner(config=build_config(_args(opponent_games=1.0, num_games=12)))
    runner.add_snapshot(1, _always(runner, LEFT))  # dropped: two are kept
    runner.add_snapshot(2, _always(runner, LEFT))
    runner.add_snapshot(3, _always(runner, RIGHT))
    assert runner.snapshot_ids() == [2, 3]
    assert [i for i, _ in runner.snapshot_states()] == [2, 3]
    steps = _record_steps(runner)
    runner.sample(num_timesteps=300)

    slot_move = {slot: runner.pool.snapshot(slot)[1]["pi.bias"].argmax() for slot in (0, 1)}
    assert set(slot_move.values()) == {LEFT, RIGHT}
    checked = 0
    for alive, mask, actions, drawn in steps:
        assert set(np.unique(drawn[:, 1:])) == {0, 1}  # both snapshots are in play, the learner's seat draws none
        assert (drawn[:, 0] == -1).all()
        for b, s in np.argwhere(alive[:, 1:]):
            wanted = slot_move[drawn[b, s + 1]]
            if mask[b, s + 1, wanted]:
                assert actions[b, s + 1] == wanted
                checked += 1
    assert checked > 100


def test_the_past_pool_entry_needs_snapshots_and_names_itself_in_errors() -> None:
    with pytest.raises(ConfigError, match="past_policies must be a positive integer, got 0"):
        build_config(_args(past_policies=0))
    with pytest.raises(ConfigError, match="snapshot_every must be a positive integer, got 0"):
        build_config(_args(snapshot_every=0))
    with pytest.raises(ConfigError, match="unknown opponent bots \\['pats'\\]; known: .*'past'"):
        build_config(_args(opponents=["pats"]))
    assert BatchSettings.of(build_config(_args(opponent_games=0.0))).past_policies == 0  # no past games: no snapshots


@pytest.mark.slow
def test_the_drivers_snapshots_reach_a_remote_runner_and_survive_a_resume(tmp_path: Path) -> None:
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    from battlesnake_rllib.callbacks import learner_weights

    def same(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        algo = build_config(_args(num_env_runners=1)).build_algo()
        weights = {0: learner_weights(algo)}
        for _ in range(3):
            result = algo.train()
            weights[algo.iteration] = learner_weights(algo)
        assert result["env_runners"]["past_snapshots"] == 2
        assert not same(weights[2], weights[3])  # the policy learned: the snapshots differ
        remote = algo.env_runner_group.foreach_env_runner(lambda r: r.snapshot_states(), local_env_runner=False)[0]
        assert [i for i, _ in remote] == [2, 3]
        assert all(same(state, weights[i]) for i, state in remote)
        algo.save_to_path(str(tmp_path / "checkpoint"))
        algo.stop()

        resumed = Algorithm.from_checkpoint(str(tmp_path / "checkpoint"))
        kept = resumed.env_runner_group.foreach_env_runner(lambda r: r.snapshot_states())
        assert len(kept) == 2  # the local runner (checkpointed) and the fresh remote one
        for runner_snapshots in kept:
            assert [i for i, _ in runner_snapshots] == [2, 3]
            assert all(same(state, weights[i]) for i, state in runner_snapshots)
        resumed.train()
        assert resumed.env_runner_group.foreach_env_runner(lambda r: r.snapshot_ids(), local_env_runner=False) == [
            [3, 4]]
        resumed.stop()
    finally:
        ray.shutdown()
