"""The CNN RLModules (masking, shapes, values, Q-values), their export to TorchScript / ONNX, and RLlib smoke runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib")
torch = pytest.importorskip("torch")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical  # noqa: E402
from ray.rllib.core.rl_module.apis import (  # noqa: E402
    TARGET_NETWORK_ACTION_DIST_INPUTS,
    QNetAPI,
    TargetNetworkAPI,
    ValueFunctionAPI,
)
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402

from battlesnake_gym.envs import BattlesnakeParallelEnv  # noqa: E402
from battlesnake_gym.observations import EgocentricEncoder  # noqa: E402
from battlesnake_policy import MASKED_LOGIT, ModelError, load_policy  # noqa: E402
from battlesnake_policy.files import META_KEY  # noqa: E402
from battlesnake_rllib.export import export_module  # noqa: E402
from battlesnake_rllib.model import BattlesnakeCNN, BattlesnakeCNNQ, CnnConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QF_PREDS, QF_NEXT_PREDS, QF_TARGET_NEXT_PREDS = "qf_preds", "qf_next_preds", "qf_target_next_preds"


def _env_spaces(view: int | None = None) -> tuple[gym.spaces.Dict, gym.spaces.Discrete]:
    encoder = EgocentricEncoder(view=view)
    env = BattlesnakeParallelEnv(num_snakes=2, encoder=encoder)
    agent = env.possible_agents[0]
    return env.observation_space(agent), env.action_space(agent)


def _build(module_class: type = BattlesnakeCNN, view: int | None = None, inference_only: bool = False,
           **model_config):
    obs_space, act_space = _env_spaces(view)
    spec = RLModuleSpec(module_class=module_class, observation_space=obs_space, action_space=act_space,
                        inference_only=inference_only, model_config=model_config)
    return spec.build()


def _batch(module, n: int, seed: int, all_zero_rows: int = 0) -> dict[str, torch.Tensor]:
    """n random (uint8 planes, int8 mask) rows; every mask allows at least one move except the last all_zero_rows."""
    rng = np.random.default_rng(seed)
    planes = rng.integers(0, 256, (n, *module.obs_shape), dtype=np.uint8)
    mask = rng.integers(0, 2, (n, 4), dtype=np.int8)
    mask[np.arange(n), rng.integers(0, 4, n)] = 1
    if all_zero_rows:
        mask[n - all_zero_rows:] = 0
    return {"observation": torch.from_numpy(planes), "action_mask": torch.from_numpy(mask)}


@pytest.fixture(scope="module")
def cnn() -> BattlesnakeCNN:
    module = _build()
    module.make_target_networks()
    return module


@pytest.fixture(scope="module")
def qnet() -> BattlesnakeCNNQ:
    module = _build(BattlesnakeCNNQ)
    module.make_target_networks()
    return module


# ---- the actor-critic module ---------------------------------------------------------------------------------------


def test_the_module_builds_from_a_spec_with_the_envs_dict_space(cnn: BattlesnakeCNN) -> None:
    assert isinstance(cnn, BattlesnakeCNN)
    assert isinstance(cnn, ValueFunctionAPI) and isinstance(cnn, TargetNetworkAPI)
    assert cnn.obs_shape == (10, 21, 21) and cnn.has_action_mask and cnn.num_actions == 4
    assert cnn.cnn_config == CnnConfig()


@pytest.mark.parametrize("view", [None, 11])
def test_every_forward_gives_one_logit_per_action_and_one_value_per_observation(view: int | None) -> None:
    module = _build(view=view)
    batch = {Columns.OBS: _batch(module, 9, seed=1)}
    assert module.obs_shape == ((10, 21, 21) if view is None else (10, 11, 11))
    for out in (module.forward_inference(batch), module.forward_exploration(batch, t=0)):
        assert out[Columns.ACTION_DIST_INPUTS].shape == (9, 4)
        assert out[Columns.ACTION_DIST_INPUTS].dtype == torch.float32
    train = module.forward_train(batch)
    assert train[Columns.ACTION_DIST_INPUTS].shape == (9, 4)
    assert train[Columns.EMBEDDINGS].shape == (9, 128)
    values = module.compute_values(batch)
    assert values.shape == (9,) and torch.isfinite(values).all()
    torch.testing.assert_close(module.compute_values(batch, embeddings=train[Columns.EMBEDDINGS]), values)


def test_the_argmax_never_picks_a_masked_action(cnn: BattlesnakeCNN) -> None:
    obs = _batch(cnn, 500, seed=2)
    logits = cnn.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    greedy = logits.argmax(dim=-1)
    assert (obs["action_mask"][torch.arange(500), greedy] == 1).all()
    assert (logits[obs["action_mask"] == 0] == MASKED_LOGIT).all()


def test_sampling_the_action_distribution_never_draws_a_masked_action(cnn: BattlesnakeCNN) -> None:
    obs = _batch(cnn, 500, seed=3)
    logits = cnn.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    dist = cnn.get_exploration_action_dist_cls().from_logits(logits)
    assert isinstance(dist, TorchCategorical)
    torch.manual_seed(0)
    for _ in range(20):
        actions = dist.sample()
        assert (obs["action_mask"][torch.arange(500), actions] == 1).all()
    assert torch.isfinite(dist.entropy()).all() and torch.isfinite(dist.logp(actions)).all()


def test_an_all_zero_mask_masks_nothing_and_keeps_logits_finite(cnn: BattlesnakeCNN) -> None:
    obs = _batch(cnn, 64, seed=4, all_zero_rows=64)
    logits = cnn.forward_exploration({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    unmasked = cnn.pi(cnn.trunk(obs["observation"]))
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, unmasked)
    dist = TorchCategorical.from_logits(logits)
    assert torch.isfinite(dist.entropy()).all()
    drawn = torch.stack([dist.sample() for _ in range(50)])
    assert set(drawn.unique().tolist()) == {0, 1, 2, 3}


def test_rows_with_and_without_a_usable_mask_are_masked_independently(cnn: BattlesnakeCNN) -> None:
    obs = _batch(cnn, 8, seed=5, all_zero_rows=3)
    logits = cnn.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    assert (logits[:5][obs["action_mask"][:5] == 0] == MASKED_LOGIT).all()
    assert (logits[5:] > MASKED_LOGIT).all()


def test_uint8_observations_are_cast_and_scaled_by_the_spaces_high_inside_the_module(cnn: BattlesnakeCNN) -> None:
    obs = _batch(cnn, 6, seed=6)
    as_uint8 = cnn.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    as_float = cnn.forward_inference({Columns.OBS: {**obs, "observation": obs["observation"].float()}})
    torch.testing.assert_close(as_uint8, as_float[Columns.ACTION_DIST_INPUTS])
    high = _env_spaces()[0]["observation"].high.reshape(10, -1).max(axis=1).astype(np.float32)
    expected = np.where(high > 0, 1.0 / np.maximum(high, 1), 1.0)
    np.testing.assert_allclose(cnn.trunk.scale.flatten().numpy(), expected, rtol=1e-6)


def test_a_fixed_obs_scale_applies_to_every_channel() -> None:
    module = _build(obs_scale=1 / 255)
    np.testing.assert_allclose(module.trunk.scale.flatten().numpy(), np.full(10, 1 / 255, np.float32))


def test_chunked_and_whole_batch_forwards_agree() -> None:
    chunked, whole = _build(forward_chunk=7), _build(forward_chunk=0)
    whole.load_state_dict(chunked.state_dict())
    obs = {Columns.OBS: _batch(chunked, 30, seed=7)}
    torch.testing.assert_close(chunked.forward_inference(obs)[Columns.ACTION_DIST_INPUTS],
                               whole.forward_inference(obs)[Columns.ACTION_DIST_INPUTS])


def test_inference_only_copies_drop_the_value_parts_and_still_act() -> None:
    full = _build(share_trunk=False)
    light = _build(share_trunk=False, inference_only=True)
    assert full.vf_trunk is not None and not hasattr(light, "vf") and not hasattr(light, "vf_trunk")
    light.set_state(full.get_state(inference_only=True))
    obs = {Columns.OBS: _batch(full, 5, seed=8)}
    torch.testing.assert_close(light.forward_inference(obs)[Columns.ACTION_DIST_INPUTS],
                               full.forward_inference(obs)[Columns.ACTION_DIST_INPUTS])
    assert full.forward_train(obs)[Columns.EMBEDDINGS].shape == (5, 128)


def test_the_old_policy_network_starts_equal_to_the_policy(cnn: BattlesnakeCNN) -> None:
    obs = {Columns.OBS: _batch(cnn, 7, seed=9)}
    torch.testing.assert_close(cnn.forward_target(obs)[TARGET_NETWORK_ACTION_DIST_INPUTS],
                               cnn.forward_inference(obs)[Columns.ACTION_DIST_INPUTS])


def test_a_plain_box_observation_space_works_without_masking() -> None:
    space = gym.spaces.Box(0, 255, (10, 11, 11), np.uint8)
    module = BattlesnakeCNN(observation_space=space, action_space=gym.spaces.Discrete(4), model_config={})
    out = module.forward_inference({Columns.OBS: torch.zeros((3, 10, 11, 11), dtype=torch.uint8)})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (3, 4) and not module.has_action_mask


def test_channels_last_observations_are_read_as_height_width_channels() -> None:
    space = gym.spaces.Box(0, 5, (13, 13, 3), np.uint8)
    module = BattlesnakeCNN(observation_space=space, action_space=gym.spaces.Discrete(4),
                            model_config={"channels_last": True})
    obs = torch.randint(0, 6, (4, 13, 13, 3), dtype=torch.uint8)
    assert module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].shape == (4, 4)
    np.testing.assert_allclose(module.trunk.scale.flatten().numpy(), np.full(3, 0.2, np.float32))


@pytest.mark.parametrize(("key", "value"), [
    ("conv_filters", [[16, 3]]), ("conv_filters", [[0, 3, 1]]), ("hidden", 0), ("hidden", "128"),
    ("obs_scale", "auto"), ("obs_scale", -1.0), ("share_trunk", "yes"), ("forward_chunk", -1),
    ("epsilon", 1.5), ("epsilon", [(5, 1.0)]),
])
def test_bad_model_config_values_are_rejected_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        CnnConfig.from_model_config({key: value})


def test_unknown_and_unset_model_config_keys_are_ignored() -> None:
    assert CnnConfig.from_model_config({"vf_share_layers": False, "conv_filters": None}) == CnnConfig()


# ---- the Q-network -------------------------------------------------------------------------------------------------


def test_the_q_module_implements_rllibs_q_and_target_apis(qnet: BattlesnakeCNNQ) -> None:
    assert isinstance(qnet, QNetAPI) and isinstance(qnet, TargetNetworkAPI)
    obs = _batch(qnet, 40, seed=10)
    q = qnet.compute_q_values({Columns.OBS: obs})[QF_PREDS]
    assert q.shape == (40, 4) and (q[obs["action_mask"] == 0] == MASKED_LOGIT).all()
    greedy = qnet.forward_inference({Columns.OBS: obs})[Columns.ACTIONS]
    assert (obs["action_mask"][torch.arange(40), greedy] == 1).all()


def test_q_exploration_draws_random_actions_among_the_allowed_ones_only() -> None:
    module = _build(BattlesnakeCNNQ, epsilon=1.0)
    obs = _batch(module, 300, seed=11, all_zero_rows=100)
    torch.manual_seed(0)
    drawn = torch.stack([module.forward_exploration({Columns.OBS: obs}, t=5)[Columns.ACTIONS] for _ in range(10)])
    assert (obs["action_mask"][torch.arange(200), drawn[:, :200]] == 1).all()
    assert set(drawn[:, 200:].unique().tolist()) == {0, 1, 2, 3}


def test_the_q_training_forward_gives_current_next_and_target_q_values(qnet: BattlesnakeCNNQ) -> None:
    obs, next_obs = _batch(qnet, 12, seed=12), _batch(qnet, 12, seed=13)
    out = qnet.forward_train({Columns.OBS: obs, Columns.NEXT_OBS: next_obs})
    assert {k: tuple(v.shape) for k, v in out.items()} == {QF_PREDS: (12, 4), QF_NEXT_PREDS: (12, 4),
                                                            QF_TARGET_NEXT_PREDS: (12, 4)}
    assert (out[QF_TARGET_NEXT_PREDS][next_obs["action_mask"] == 0] == MASKED_LOGIT).all()
    torch.testing.assert_close(out[QF_NEXT_PREDS], out[QF_TARGET_NEXT_PREDS])  # the target starts as a copy


def test_the_q_module_refuses_distributional_q_learning() -> None:
    with pytest.raises(ValueError, match="num_atoms"):
        _build(BattlesnakeCNNQ, num_atoms=51)


# ---- export and loading --------------------------------------------------------------------------------------------


def _onnx_ready() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


FORMATS = ["torchscript", pytest.param("onnx", marks=pytest.mark.skipif(
    not _onnx_ready(), reason="needs pip install onnx onnxscript onnxruntime"))]


@pytest.fixture(scope="module")
def exported(cnn: BattlesnakeCNN, qnet: BattlesnakeCNNQ, tmp_path_factory) -> dict[str, dict[str, Path]]:
    formats = ("torchscript", "onnx") if _onnx_ready() else ("torchscript",)
    root = tmp_path_factory.mktemp("exported")
    return {name: export_module(module, root / name, formats=formats)
            for name, module in (("cnn", cnn), ("qnet", qnet))}


def _module_actions(module, obs: dict[str, torch.Tensor]) -> np.ndarray:
    if isinstance(module, BattlesnakeCNNQ):
        return module.forward_inference({Columns.OBS: obs})[Columns.ACTIONS].numpy()
    return module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].argmax(-1).numpy()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["cnn", "qnet"])
def test_the_exported_policy_picks_the_modules_greedy_actions(fmt: str, which: str, cnn, qnet, exported) -> None:
    module = cnn if which == "cnn" else qnet
    policy = load_policy(exported[which][fmt])
    assert policy.format == fmt and policy.obs_shape == (10, 21, 21)
    for n, seed in ((1, 20), (37, 21), (600, 22)):
        obs = _batch(module, n, seed=seed, all_zero_rows=n // 10)
        actions = policy(obs["observation"].numpy(), obs["action_mask"].numpy())
        assert actions.dtype == np.int64 and actions.shape == (n,)
        np.testing.assert_array_equal(actions, _module_actions(module, obs))
    if which == "cnn":
        logits = policy.logits(obs["observation"], obs["action_mask"])
        expected = cnn.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].numpy()
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["cnn", "qnet"])
def test_the_exported_value_is_the_critics_or_the_best_allowed_q_value(fmt: str, which: str, cnn, qnet,
                                                                         exported) -> None:
    module = cnn if which == "cnn" else qnet
    policy = load_policy(exported[which][fmt])
    assert policy.has_value
    obs = _batch(module, 40, seed=26, all_zero_rows=4)
    logits, values = policy.evaluate(obs["observation"].numpy(), obs["action_mask"].numpy())
    assert logits.shape == (40, 4) and values.shape == (40,) and values.dtype == np.float32
    with torch.no_grad():
        if which == "cnn":
            expected = cnn.compute_values({Columns.OBS: obs}).numpy()
        else:
            expected = qnet.compute_q_values({Columns.OBS: obs})["qf_preds"].max(dim=-1).values.numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-4)


def test_a_file_without_the_value_output_still_plays_but_cannot_be_evaluated(tmp_path: Path) -> None:
    """Files exported before the value output existed give the logits alone."""

    class LogitsOnly(torch.nn.Module):
        def forward(self, obs: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
            return obs.float().flatten(1)[:, :4] + action_mask.float()

    path = tmp_path / "policy.pt"
    example = (torch.zeros((3, 10, 21, 21), dtype=torch.uint8), torch.ones((3, 4), dtype=torch.int8))
    traced = torch.jit.trace(LogitsOnly(), example)
    torch.jit.save(traced, str(path), _extra_files={META_KEY: json.dumps({"obs_shape": [10, 21, 21],
                                                                           "num_actions": 4})})
    policy = load_policy(path)
    assert not policy.has_value
    mask = np.array([[0, 0, 1, 0]], np.int8)
    assert policy(np.zeros((1, 10, 21, 21), np.uint8), mask).tolist() == [2]
    with pytest.raises(ModelError, match="no value output"):
        policy.evaluate(np.zeros((1, 10, 21, 21), np.uint8), mask)


def test_a_loaded_policy_takes_one_observation_and_no_mask(cnn: BattlesnakeCNN, exported) -> None:
    policy = load_policy(exported["cnn"]["torchscript"].parent)  # the directory: its policy.pt
    obs = _batch(cnn, 1, seed=23)
    full = {**obs, "action_mask": torch.ones((1, 4), dtype=torch.int8)}
    assert policy(obs["observation"][0].numpy()).tolist() == _module_actions(cnn, full).tolist()


def test_a_loaded_policy_rejects_observations_of_the_wrong_dtype_or_shape(exported) -> None:
    policy = load_policy(exported["cnn"]["torchscript"])
    with pytest.raises(ValueError, match="uint8"):
        policy(np.zeros((2, 10, 21, 21), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 10, 21, 21\)"):
        policy(np.zeros((2, 10, 11, 11), np.uint8))


def test_load_policy_needs_no_ray(cnn: BattlesnakeCNN, exported, tmp_path: Path) -> None:
    obs = _batch(cnn, 50, seed=24, all_zero_rows=5)
    np.save(tmp_path / "obs.npy", obs["observation"].numpy())
    np.save(tmp_path / "mask.npy", obs["action_mask"].numpy())
    script = textwrap.dedent(f"""
        import sys
        sys.modules["ray"] = None  # any import of ray now raises ImportError
        import numpy as np
        from battlesnake_policy import load_policy
        obs, mask = np.load({str(tmp_path / "obs.npy")!r}), np.load({str(tmp_path / "mask.npy")!r})
        for path in sys.argv[1:]:
            print(" ".join(map(str, load_policy(path)(obs, mask))))
        assert not any(name == "ray" or name.startswith("ray.") for name, m in sys.modules.items() if m is not None)
    """)
    paths = [str(p) for p in exported["cnn"].values()]
    run = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    expected = " ".join(map(str, _module_actions(cnn, obs)))
    assert run.stdout.split("\n")[: len(paths)] == [expected] * len(paths)


def test_load_policy_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_policy(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_policy(tmp_path)


@pytest.mark.parametrize("name", ["notes.pt", "notes.txt", "zipped.pt", "garbage.onnx"])
def test_load_policy_names_a_file_that_is_not_a_policy(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    if name == "zipped.pt":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a model")
    else:
        path.write_text("this is not a model")
    if name.endswith(".onnx") and not _onnx_ready():
        with pytest.raises(ImportError, match="pip install onnxruntime"):
            load_policy(path)
        return
    with pytest.raises(ValueError, match=name):
        load_policy(path)


def test_export_reads_an_rl_module_checkpoint_directory(cnn: BattlesnakeCNN, tmp_path: Path) -> None:
    cnn.save_to_path(tmp_path / "module")
    paths = export_module(tmp_path / "module", tmp_path / "out", formats=["torchscript"])
    obs = _batch(cnn, 20, seed=25)
    actions = load_policy(paths["torchscript"])(obs["observation"].numpy(), obs["action_mask"].numpy())
    np.testing.assert_array_equal(actions, _module_actions(cnn, obs))


def test_export_names_a_path_that_is_no_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        export_module(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="formats"):
        export_module(_build(view=11), tmp_path / "out", formats=["tflite"])


# ---- RLlib end to end ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def _shared_policy(config, module_class: type, **model_config):
    from battlesnake_rllib.env import BattlesnakeMultiAgentEnv

    spec = RLModuleSpec(module_class=module_class, model_config={"hidden": 64, **model_config})
    return (config.environment(BattlesnakeMultiAgentEnv, env_config={"num_snakes": 2, "max_turns": 50})
            .env_runners(num_env_runners=0)
            .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared")
            .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={"shared": spec})))


@pytest.mark.slow
def test_ppo_trains_one_iteration_with_the_cnn_as_the_shared_policy(ray_local) -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    config = _shared_policy(PPOConfig(), BattlesnakeCNN).training(train_batch_size=256, minibatch_size=64,
                                                                   num_epochs=1)
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    learner = result["learners"]["shared"]
    assert np.isfinite(learner["total_loss"]) and np.isfinite(learner["vf_loss"])


@pytest.mark.slow
def test_appo_trains_with_the_cnns_old_policy_network(ray_local) -> None:
    from ray.rllib.algorithms.appo import APPOConfig

    config = _shared_policy(APPOConfig(), BattlesnakeCNN).training(train_batch_size=256)
    config = config.reporting(min_time_s_per_iteration=0)
    algo = config.build_algo()
    try:
        deadline, learner = time.monotonic() + 45, {}
        while "total_loss" not in learner and time.monotonic() < deadline:
            learner = algo.train().get("learners", {}).get("shared", {})  # APPO learns asynchronously
    finally:
        algo.stop()
    assert np.isfinite(learner["total_loss"])


@pytest.mark.slow
def test_dqn_trains_a_few_iterations_with_the_q_network(ray_local) -> None:
    from ray.rllib.algorithms.dqn import DQNConfig

    config = _shared_policy(DQNConfig(), BattlesnakeCNNQ, epsilon=[(0, 1.0), (500, 0.1)]).training(
        train_batch_size=32, num_steps_sampled_before_learning_starts=64,
        replay_buffer_config={"type": "MultiAgentEpisodeReplayBuffer", "capacity": 1000})
    config = config.reporting(min_sample_timesteps_per_iteration=64, min_time_s_per_iteration=0)
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(3)]
    finally:
        algo.stop()
    learner = results[-1]["learners"]["shared"]
    assert np.isfinite(learner["qf_loss"]) and abs(learner["qf_mean"]) < 1e6  # masked Q-values never leak in
