"""Curriculum over board sizes and snake counts: the runner's games change at a stage switch, the driver's stage
reaches remote runners (and survives a resume), and bad curricula are refused before Ray starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.rllib")
torch = pytest.importorskip("torch")

from battlesnake_gym.observations import EGO_OFF_BOARD  # noqa: E402
from battlesnake_rllib.callbacks import stage_at  # noqa: E402
from battlesnake_rllib.config import ConfigError, TrainArgs, build_config  # noqa: E402
from battlesnake_rllib.sampler import BatchedEnvRunner  # noqa: E402
from battlesnake_rllib.settings import BatchSettings  # noqa: E402

TRAIN = Path(__file__).resolve().parents[1] / "rllib_src" / "train-mabs.py"
#: 2-snake 5x5 games, then 3-snake 7x7 games, then the run's own game: 2-snake 7x7 (a 13-cell view sees it all).
STAGES = ["5x5:2@1", "7x7:3@1", "7x7:2"]


def _args(**overrides) -> TrainArgs:
    values = dict(width=7, height=7, num_snakes=2, view=13, curriculum=STAGES, num_games=8, max_turns=30,
                  steps_per_sample=8, train_batch_size=256, minibatch_size=128, num_epochs=1, conv_filters=[4],
                  hidden=16, seed=5)
    return TrainArgs(**{**values, **overrides})


def _what_episodes_show(episodes) -> tuple[set[int], set[int], set[int]]:
    """(board cells each snake saw on its first step, seats that played, curriculum stages), over the episodes."""
    cells = {int((e.get_observations()["observation"][0][EGO_OFF_BOARD] == 0).sum()) for e in episodes}
    return cells, {e.custom_data["slot"][1] for e in episodes}, {e.custom_data["stage"] for e in episodes}


def test_a_stage_switch_moves_the_runners_games_to_the_new_board_and_snake_count() -> None:
    config = build_config(_args())
    # The model's spaces and evaluation describe the run's own game, the last stage.
    game = BatchSettings.of(config).game
    assert (game.width, game.num_snakes) == (7, 2)
    runner = BatchedEnvRunner(config=config)
    first = runner.sample(num_timesteps=300)
    assert _what_episodes_show(first) == ({25}, {0, 1}, {0})  # 5x5 boards, 2 snakes
    open_lives = {e.id_ for e in first if not e.is_done}
    assert open_lives

    assert runner.set_curriculum_stage(1) == 1
    second = runner.sample(num_timesteps=300)
    assert _what_episodes_show(second) == ({49}, {0, 1, 2}, {1})  # 7x7 boards, 3 snakes
    assert runner.batch.settings.width == 7 and runner.batch.num_snakes == 3
    assert not open_lives & {e.id_ for e in second}  # no life goes on across the switch
    assert all(len(e.get_observations()["observation"]) == len(e) + 1 for e in second)
    assert runner.get_metrics()["curriculum_stage"].peek() == 1

    runner.set_curriculum_stage(2)
    assert _what_episodes_show(runner.sample(num_timesteps=300)) == ({49}, {0, 1}, {2})
    with pytest.raises(ValueError, match="curriculum stage must be an index in \\[0, 3\\), got 3"):
        runner.set_curriculum_stage(3)


def test_the_stage_follows_the_iterations_each_stage_lasts_and_the_last_one_never_ends() -> None:
    stages = _args(curriculum=["5x5:2@2", "7x7:3", "7x7:2"], stage_iterations=3).curriculum_stages()
    assert [s.iterations for s in stages] == [2, 3, None]
    assert [stage_at(stages, done) for done in range(8)] == [0, 0, 1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("overrides, message", [
    (dict(curriculum=["7x7"]), "curriculum stage '7x7' must look like WIDTHxHEIGHT:SNAKES"),
    (dict(curriculum=["5x5:0@1", "7x7:2"]), "curriculum stage '5x5:0@1': snakes and iterations must be positive"),
    (dict(curriculum=["5x5:2@1", "9x9:2"]), "the last curriculum stage must be the run's own game 7x7:2"),
    (dict(curriculum=["5x5:2@1", "7x7:2@4"]), "the last curriculum stage '7x7:2@4' lasts to the end of the run"),
    (dict(curriculum=["2x2:2@1", "7x7:2"]), "curriculum stage '2x2:2@1': width must be >= 3"),
    (dict(view=0), "needs a fixed egocentric view of at least 13 cells .* got view 0"),
    (dict(view=11), "needs a fixed egocentric view of at least 13 cells .* got view 11: set view to 13"),
    (dict(encoder="bordered-51s"), "every curriculum stage must give the same observation shape"),
    (dict(stage_iterations=0), "stage_iterations must be a positive integer, got 0"),
])
def test_a_bad_curriculum_is_refused_before_ray_starts(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(_args(**overrides))


def test_a_curriculum_on_the_command_line_needs_a_fixed_view_and_exits_2_without_starting_ray(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(TRAIN), "--out", str(tmp_path / "run"), "--curriculum", "7x7:2@5",
                             "11x11:4"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "needs a fixed egocentric view of at least 21 cells" in result.stderr
    assert "Started a local Ray instance" not in result.stderr + result.stdout


@pytest.mark.slow
def test_a_remote_env_runner_plays_the_drivers_stage_also_after_a_resume(tmp_path: Path) -> None:
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    def remote_games(runner) -> tuple:  # runs in the runner's process: no reference to this test module
        from battlesnake_gym.observations import EGO_OFF_BOARD

        episodes = runner.sample(num_timesteps=100, explore=False)
        cells = {int((e.get_observations()["observation"][0][EGO_OFF_BOARD] == 0).sum()) for e in episodes}
        return (runner.curriculum_stage, runner.worker_index, cells, {e.custom_data["slot"][1] for e in episodes},
                {e.custom_data["stage"] for e in episodes})

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        algo = build_config(_args(num_env_runners=1)).build_algo()
        group = algo.env_runner_group
        assert group.foreach_env_runner(remote_games, local_env_runner=False) == [(0, 1, {25}, {0, 1}, {0})]
        algo.train()  # one iteration of stage 0, then the driver moves every runner to stage 1
        assert group.foreach_env_runner(remote_games, local_env_runner=False) == [(1, 1, {49}, {0, 1, 2}, {1})]
        algo.train()
        assert algo.train()["env_runners"]["curriculum_stage"] == 2
        algo.save_to_path(str(tmp_path / "checkpoint"))
        algo.stop()

        resumed = Algorithm.from_checkpoint(str(tmp_path / "checkpoint"))
        assert resumed.iteration == 3
        # Before any resumed iteration, the fresh remote runner already plays the restored stage.
        assert resumed.env_runner_group.foreach_env_runner(remote_games, local_env_runner=False) == [
            (2, 1, {49}, {0, 1}, {2})]
        resumed.stop()
    finally:
        ray.shutdown()
