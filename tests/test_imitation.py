"""The imitation warm-start: the teacher's games as samples, the supervised fit, and the run that starts from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib")
torch = pytest.importorskip("torch")

from battlesnake_gym.bots import make_bot  # noqa: E402
from battlesnake_gym.envs import BatchEnv  # noqa: E402
from battlesnake_rllib.config import ConfigError, TrainArgs, build_config  # noqa: E402
from battlesnake_rllib.imitation import TIME_SHARE, fit, imitation_limits, teacher_games  # noqa: E402
from battlesnake_rllib.sampler import SpacesOnlyEnv  # noqa: E402
from battlesnake_rllib.settings import BatchSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GAMMA = 0.99


def _settings(**kw) -> BatchSettings:
    return TrainArgs(num_games=16, max_turns=60, **kw).batch_settings()


def test_the_samples_hold_the_teachers_moves_and_the_discounted_end_of_each_life() -> None:
    settings = _settings()
    data = teacher_games(settings, 600, teacher="flood", explore=0.0, gamma=GAMMA, seed=2)
    assert len(data.action) >= 600 and data.obs.dtype == np.uint8 and data.mask.shape == (len(data.action), 4)
    # Every value is +-gamma^k (a win or a death k + 1 turns later) or 0 (cut at max_turns).
    nonzero = data.value[data.value != 0]
    k = np.log(np.abs(nonzero)) / np.log(GAMMA)
    assert np.allclose(k, np.round(k), atol=1e-3) and (k >= -1e-6).all() and (k <= 60).all()
    assert (data.value > 0).any() and (data.value < 0).any()
    # The teacher chose a move its mask allows whenever one was allowed.
    allowed = data.mask.sum(axis=1) > 0
    assert data.mask[np.arange(len(data.action)), data.action][allowed].all()


def test_the_teachers_move_is_what_the_bot_plays_on_that_board() -> None:
    # Nothing random (no detours, every sample kept) and games of at most 60 turns: the first 64 samples are the 16
    # starting boards' 4 snakes, in order, all of whose lives have ended by then.
    settings = _settings()
    data = teacher_games(settings, 16 * 4 * 60, teacher="flood", explore=0.0, keep=1.0, seed=5)
    env = BatchEnv(settings.game.settings(), num_snakes=4, batch_size=16, encoder=settings.game.make_encoder(),
                   max_turns=60, seed=5 + 17)
    np.testing.assert_array_equal(data.obs[:64], env.obs.reshape(64, *env.obs.shape[2:]))
    np.testing.assert_array_equal(data.action[:64], make_bot("flood", 5)(env.games).reshape(64))


def test_the_fit_learns_the_teachers_moves() -> None:
    args = TrainArgs(num_games=16, max_turns=60, encoder="territory", view=21)
    config = build_config(args)
    data = teacher_games(BatchSettings.of(config), 4000, teacher="territory", seed=1)
    module = config.get_rl_module_spec(env=SpacesOnlyEnv(config.env_config), inference_only=False).build()
    before = fit(module, data, epochs=1, minibatch=len(data.action), lr=0.0, seed=0)["imitation_accuracy"]
    after = fit(module, data, epochs=5, minibatch=128, seed=0)["imitation_accuracy"]
    assert after > before + 0.1 and after > 0.5, (before, after)  # measured: 0.42 -> 0.55


def test_imitation_settings_are_checked_before_ray_starts() -> None:
    with pytest.raises(ConfigError, match="unknown bot to imitate 'chess'"):
        TrainArgs(imitate="chess").validate()
    with pytest.raises(ConfigError, match="imitate needs a policy network"):
        TrainArgs(imitate="flood", algorithm="DQN").validate()
    with pytest.raises(ConfigError, match="imitation_samples must be a positive integer"):
        TrainArgs(imitate="flood", imitation_samples=0).validate()


def test_a_run_starts_from_the_imitation_and_reports_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, str(REPO / "rllib_src" / "train-mabs.py"), "--out", str(out),
                             "--iterations", "1", "--num-games", "8", "--train-batch-size", "512",
                             "--minibatch-size", "128", "--max-turns", "40", "--eval-every", "0", "--no-export",
                             "--imitate", "flood", "--imitation-samples", "300"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if line.startswith("imitation_"))
    assert int(lines["imitation_samples"]) >= 300 and 0 < float(lines["imitation_accuracy"]) <= 1


def test_the_warm_start_is_sized_to_the_run() -> None:
    # No more snake-turns than the run's RL samples, and a quarter of its minutes at most.
    assert imitation_limits(500_000, 10.0, None, 8192) == (500_000, 600.0 * TIME_SHARE)
    assert imitation_limits(500_000, 10.0, 2, 8192) == (16_384, 600.0 * TIME_SHARE)
    assert imitation_limits(1_000, None, 5, 8192) == (1_000, None)
    assert imitation_limits(500_000, None, 0, 8192) == (500_000, None)  # the imitation alone (ablation row 9)


def test_recording_ends_at_its_time_limit_or_a_stop_request() -> None:
    settings = _settings()
    stopped = teacher_games(settings, 10**9, teacher="flood", stop=lambda: True)
    assert len(stopped.action) == 0 and stopped.obs.shape[1:] == SpacesOnlyEnv(settings.env_config()) \
        .observation_space["observation"].shape
    timed = teacher_games(settings, 10**9, teacher="flood", seconds=3.0)
    assert 0 < len(timed.action) < 10**9 and len(timed.action) == len(timed.value)


def test_the_defaults_are_the_learning_benchmarks_winner() -> None:
    # README, ablation table row 12: the territory planes and a 500,000-turn imitation of the territory bot.
    args = TrainArgs()
    assert (args.encoder, args.teacher(), args.imitation_samples) == ("territory", "territory", 500_000)
    # DQN's Q-network has no policy to imitate: by default it starts from scratch; asked to imitate, it is refused.
    assert TrainArgs(algorithm="DQN").teacher() == ""
    TrainArgs(algorithm="DQN").validate()
    assert TrainArgs(imitate="").teacher() == "" and TrainArgs(imitate="flood").teacher() == "flood"
