"""Training: the fast sampler's episodes, config errors before Ray starts, a tiny end-to-end run of train-mabs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib")
torch = pytest.importorskip("torch")

from battlesnake_rllib.config import ConfigError, TrainArgs, apply_overrides, build_config  # noqa: E402
from battlesnake_rllib.sampler import BatchedEnvRunner  # noqa: E402
from battlesnake_rllib.settings import BatchSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "rllib_src" / "train-mabs.py"


def _runner(num_games: int = 8, seed: int = 3, opponent_games: float = 0.0) -> BatchedEnvRunner:
    args = TrainArgs(num_games=num_games, num_snakes=4, max_turns=40, steps_per_sample=8, seed=seed,
                     opponents=["safe", "greedy"], opponent_games=opponent_games)
    return BatchedEnvRunner(config=build_config(args))


@pytest.mark.parametrize("opponent_games", [0.0, 0.5])
def test_the_samplers_episodes_carry_exactly_the_envs_rewards_and_ends(opponent_games: float) -> None:
    runner = _runner(opponent_games=opponent_games)
    records = []  # per batch step: (alive before, actions, rewards, terminated, truncated) as the env returned them
    step = runner.batch.step

    def recording_step(actions, mask=None):
        alive = runner.batch.games.alive().copy()
        result = step(actions, mask)
        records.append((alive, np.array(actions), result.rewards.copy(), result.terminated.copy(),
                        result.truncated.copy()))
        return result

    resets = []  # (number of steps before it, mask) of every reset the runner made
    reset = runner.batch.reset

    def recording_reset(mask=None, seeds=None):
        resets.append((len(records), None if mask is None else np.array(mask)))
        return reset(mask, seeds)

    runner.batch.step, runner.batch.reset = recording_step, recording_reset
    episodes = runner.sample(num_timesteps=600) + runner.sample(num_timesteps=600)
    # The env is deterministic given the joint actions and resets: a fresh one of the same seed replays them.
    settings = BatchSettings.of(runner.config)
    replay = settings.make_env(seed=settings.seed * 1000)
    for i in range(len(records) + 1):
        for _, mask in (r for r in resets if r[0] == i):
            replay.reset(mask)
        if i == len(records):
            break
        _, actions, rewards, terminated, truncated = records[i]
        result = replay.step(actions)
        assert np.array_equal(result.rewards, rewards) and np.array_equal(result.terminated, terminated)
        assert np.array_equal(result.truncated, truncated)
    # Each slot's episodes, in order, hold exactly the rewards of the steps its snakes played, life by life.
    by_slot: dict[tuple[int, int], list] = {}
    for episode in episodes:
        by_slot.setdefault(episode.custom_data["slot"], []).append(episode)
    bot_games = int(round(opponent_games * 8))  # bots take seats 1..3 of the first games: no episodes there
    assert set(by_slot) == {(b, s) for b in range(8) for s in range(4) if b >= bot_games or s == 0}
    for (b, s), chunks in by_slot.items():
        played = [r for r in records if r[0][b, s]]
        assert np.allclose(np.concatenate([e.get_rewards() for e in chunks]), [r[2][b, s] for r in played])
        assert np.array_equal(np.concatenate([e.get_actions() for e in chunks]), [r[1][b, s] for r in played])
        assert [e.is_terminated for e in chunks if e.is_done] == [bool(r[3][b, s]) for r in played
                                                                  if r[3][b, s] or r[4][b, s]]
        assert all(len(e.get_observations()["observation"]) == len(e) + 1 for e in chunks)
    done = [e for e in episodes if e.is_done]
    assert done and len({e.id_ for e in done}) == len(done)


def test_an_unknown_algorithm_or_setting_is_refused_before_ray_starts() -> None:
    with pytest.raises(ConfigError, match="unknown algorithm 'APEX'"):
        build_config(TrainArgs(algorithm="APEX"))
    with pytest.raises(ConfigError, match="unknown training settings \\['learning_rate'\\]"):
        TrainArgs.from_dict({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="num_games must be a positive integer, got 0"):
        build_config(TrainArgs(num_games=0))
    with pytest.raises(ConfigError, match="unknown ruleset 'chess'"):
        build_config(TrainArgs(ruleset="chess"))


def test_dotted_overrides_reach_rllib_settings_and_refuse_unknown_ones() -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    config = PPOConfig()
    apply_overrides(config, ["rl.training.lr=0.001", "training.num_epochs=3"])
    assert config.lr == 0.001 and config.num_epochs == 3
    with pytest.raises(ConfigError, match="config.training\\(\\) has no setting 'learning_rate'"):
        apply_overrides(config, ["rl.training.learning_rate=0.1"])
    with pytest.raises(ConfigError, match="has no section 'trainig'"):
        apply_overrides(config, ["rl.trainig.lr=0.1"])
    with pytest.raises(ConfigError, match="lr is float .* got str 'fast'"):
        apply_overrides(config, ["rl.training.lr=fast"])
    with pytest.raises(ConfigError, match="must look like rl.training.lr=0.0003"):
        apply_overrides(config, ["rl.training.lr"])


def test_a_section_less_config_override_finds_the_section_of_its_setting() -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    config = PPOConfig()
    apply_overrides(config, ["config.lambda_=0.9", "rl.config.sample_timeout_s=33"])
    assert (config.lambda_, config.sample_timeout_s) == (0.9, 33)
    with pytest.raises(ConfigError, match="no section of PPOConfig has a setting 'lambda'"):
        apply_overrides(config, ["config.lambda=0.9"])


def test_a_bad_setting_on_the_command_line_exits_2_naming_it_without_starting_ray(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(TRAIN), "--out", str(tmp_path / "run"), "--overrides",
                             "rl.training.lrate=0.1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "has no setting 'lrate'" in result.stderr
    assert "Started a local Ray instance" not in result.stderr + result.stdout


@pytest.mark.slow
def test_a_tiny_run_writes_checkpoint_models_and_metrics_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["--out", str(out), "--num-games", "16", "--train-batch-size", "512", "--minibatch-size", "256",
              "--steps-per-sample", "8", "--eval-every", "2", "--eval-games", "4", "--checkpoint-every", "1"]
    first = subprocess.run([sys.executable, str(TRAIN), *common, "--iterations", "2"], capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    for name in ("episode_return_mean", "episode_len_mean", "win_rate_vs_safe", "env_steps_per_s"):
        assert any(line.startswith(f"{name}: ") for line in lines), name
    for path in ("config.json", "checkpoints/iteration-000002", "metrics.csv", "model/policy.pt", "model/rl_module",
                 "learning_curve.png", "replay.gif", "tb"):
        assert (out / path).exists(), path
    assert json.loads((out / "config.json").read_text())["num_games"] == 16
    assert f"serve it:    battlesnake-rl serve --model {out / 'model'}" in lines  # the run ends saying how to serve
    second = subprocess.run([sys.executable, str(TRAIN), *common, "--iterations", "3", "--resume", "--no-export"],
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stdout and "at iteration 2" in second.stdout
    assert "iteration: 3" in second.stdout.splitlines()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]


@pytest.mark.slow
def test_training_samples_with_a_remote_env_runner(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(TRAIN), "--out", str(tmp_path / "run"), "--num-env-runners", "1",
                             "--num-games", "16", "--train-batch-size", "512", "--minibatch-size", "256",
                             "--iterations", "2", "--eval-every", "0", "--no-export"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [float(line.split(": ")[1]) for line in result.stdout.splitlines()
             if line.startswith("num_env_steps_sampled_lifetime: ")]
    assert steps and steps[-1] >= 1024


def test_dqn_exploration_in_the_sampler_follows_the_epsilon_schedule_over_env_steps() -> None:
    from ray.rllib.core.columns import Columns

    runner = BatchedEnvRunner(config=build_config(TrainArgs(algorithm="DQN", num_games=8, view=7, seed=1)))
    live = runner.batch.games.alive()
    obs = np.repeat(runner.batch.obs[live], 50, axis=0)  # (N, *obs_shape) uint8
    mask = np.repeat(runner.batch.action_mask[live].astype(np.int8), 50, axis=0)
    batch = {Columns.OBS: {"observation": torch.from_numpy(obs), "action_mask": torch.from_numpy(mask)}}
    greedy = runner.module.forward_inference(batch)[Columns.ACTIONS].numpy()
    agreement = {}
    for steps in (0, 1_000_000):  # epsilon 1.0 at the start, 0.05 from 10,000 env steps on
        runner.num_env_steps_sampled_lifetime = steps
        actions, _, _ = runner._policy(obs, mask, explore=True, random_actions=False)
        agreement[steps] = float(np.mean(actions == greedy))
    assert agreement[0] < 0.7 and agreement[1_000_000] > 0.9
