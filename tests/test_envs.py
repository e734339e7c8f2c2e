"""The environments: API checkers of PettingZoo, Gymnasium and RLlib, documented spaces, episode ends, rewards."""

from __future__ import annotations

import re

import gymnasium
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from battlesnake_gym.engine import Games, GameSettings, RulesError, board_from_json
from battlesnake_gym.envs import ENV_ID, BatchEnv, BattlesnakeEnv, BattlesnakeParallelEnv, BattlesnakeVectorEnv
from battlesnake_gym.rewards import EVENTS, PRESETS, RewardConfig, Snapshot, make_rewards, step_events


def test_the_parallel_env_passes_pettingzoos_api_test() -> None:
    parallel_api_test(BattlesnakeParallelEnv(num_snakes=4, max_turns=60), num_cycles=200)
    parallel_api_test(BattlesnakeParallelEnv(num_snakes=2, ruleset="wrapped", action_mask=False), num_cycles=100)


def test_the_parallel_env_passes_pettingzoos_seed_test() -> None:
    parallel_seed_test(lambda: BattlesnakeParallelEnv(num_snakes=3, max_turns=80))


def test_the_single_agent_env_passes_gymnasiums_checker() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(gymnasium.make(ENV_ID, num_snakes=2, max_turns=50).unwrapped, skip_render_check=True)
    check_env(BattlesnakeEnv(num_snakes=4, ruleset="royale", map="royale", opponents=["safe", "random", "safe"]),
              skip_render_check=True)


def test_the_rllib_adapter_passes_rllibs_checker() -> None:
    pytest.importorskip("ray.rllib")
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    from battlesnake_rllib.env import BattlesnakeMultiAgentEnv

    env = BattlesnakeMultiAgentEnv({"num_snakes": 4, "max_turns": 30})
    check_multiagent_environments(env)
    obs, _ = env.reset(seed=3)
    done = False
    while not done:
        obs, rewards, terms, truncs, _ = env.step({a: 0 for a in env.agents})
        done = terms["__all__"] or truncs["__all__"]
        assert set(rewards) == set(obs)
    assert env.agents == []


@pytest.mark.parametrize("env_cls", [BattlesnakeParallelEnv, BattlesnakeEnv])
def test_the_documented_default_shapes_are_the_real_spaces(env_cls) -> None:
    doc = env_cls.__doc__
    section = doc[doc.index("## Observation Space"): doc.index("## Rewards")]
    documented = [tuple(int(n) for n in m.split(",") if n.strip()) for m in re.findall(r"``\(([\d, ]+)\)``", section)]
    env = env_cls()
    if env_cls is BattlesnakeParallelEnv:
        space = env.observation_space(env.possible_agents[0])
        real = [space["observation"].shape, space["action_mask"].shape]
    else:
        real = [env.observation_space.shape]
    assert documented == real
    for name in ("## Description", "## Action Space", "## Starting State", "## Episode End", "## Arguments",
                 "## Version History"):
        assert name in doc


def test_agents_only_shrink_and_dead_agents_get_their_last_reward() -> None:
    env = BattlesnakeParallelEnv(num_snakes=4, seed=0)
    obs, _ = env.reset(seed=5)
    seen_dead: set[str] = set()
    while env.agents:
        before = list(env.agents)
        actions = {a: int(np.argmax(obs[a]["action_mask"])) for a in env.agents}
        obs, rewards, terms, truncs, infos = env.step(actions)
        assert set(obs) == set(before) == set(rewards) == set(terms)
        for a in before:
            if terms[a]:
                seen_dead.add(a)
                assert a not in env.agents
                assert rewards[a] in (-1.0, 1.0, 1.02, -0.98)  # lost/won, possibly with a last food
        assert not seen_dead & set(env.agents)
    assert seen_dead == set(env.possible_agents)


def test_bad_actions_are_refused_by_name() -> None:
    env = BattlesnakeParallelEnv(num_snakes=2, seed=0)
    env.reset(seed=0)
    with pytest.raises(RulesError, match="unknown agents \\['snake_9'\\]"):
        env.step({"snake_0": 0, "snake_1": 0, "snake_9": 0})
    with pytest.raises(RulesError, match="action 7 of snake_1 is not in Discrete\\(4\\)"):
        env.step({"snake_0": 0, "snake_1": 7})
    with pytest.raises(RulesError, match="no action for live agents \\['snake_1'\\]"):
        env.step({"snake_0": 0})
    single = BattlesnakeEnv(num_snakes=2)
    single.reset(seed=0)
    with pytest.raises(RulesError, match="action -1 is not in Discrete\\(4\\)"):
        single.step(-1)
    with pytest.raises(RulesError, match="opponents must name one bot or 3 bots"):
        BattlesnakeEnv(num_snakes=4, opponents=["safe"])
    with pytest.raises(ValueError, match="unknown bot 'smart'"):
        BattlesnakeEnv(num_snakes=2, opponents="smart")


def test_an_action_for_an_agent_that_already_died_is_refused() -> None:
    env = BattlesnakeParallelEnv(num_snakes=2, seed=0, max_turns=None)
    obs, _ = env.reset(seed=2)
    while len(env.agents) == 2:
        obs, _, terms, _, _ = env.step({a: 0 for a in env.agents})  # everyone up: someone hits the wall
    dead = [a for a in env.possible_agents if a not in env.agents]
    if env.agents:
        with pytest.raises(RulesError, match="no longer in the game"):
            env.step({a: 0 for a in env.possible_agents})
    else:
        with pytest.raises(RulesError, match="call reset"):
            env.step({dead[0]: 0})


def test_max_turns_truncates_every_live_snake() -> None:
    env = BatchEnv(GameSettings(ruleset="solo", minimum_food=5), num_snakes=1, batch_size=2, max_turns=3,
                   encoder="egocentric", rewards="survival", seed=0)
    for _ in range(3):
        result = env.step(env.action_mask.argmax(axis=2))  # a move that is not certainly fatal
    assert result.truncated.all() and not result.terminated.any() and result.game_done.all()
    assert (result.rewards == 1.0).all()


def test_stepping_a_finished_game_again_is_refused() -> None:
    board = {"width": 7, "height": 7, "food": [], "hazards": [], "snakes": [
        {"id": "a", "health": 5, "body": [{"x": 0, "y": 0}, {"x": 0, "y": 1}]},
        {"id": "b", "health": 5, "body": [{"x": 5, "y": 5}, {"x": 5, "y": 4}]}]}
    env = BatchEnv(GameSettings(width=7, height=7, minimum_food=0, food_spawn_chance=0), num_snakes=2, seed=0)
    env.games.state = Games.from_state(env.settings, board_from_json(board)[0]).state
    result = env.step(np.array([[2, 0]]))  # a walks off the board
    assert result.terminated.tolist() == [[True, True]] and result.game_done.tolist() == [True]
    assert result.rewards.tolist() == [[-1.0, 1.0]]
    with pytest.raises(RulesError, match="game 0 is over: reset it"):
        env.step(np.array([[0, 0]]))


def _events_of(board: dict, moves: list[int], settings: GameSettings) -> dict[str, list[int]]:
    state, _ = board_from_json(board)
    games = Games.from_state(settings, state)
    snapshot = Snapshot(1, games.num_snakes, games.state.food.shape[1])
    snapshot.take(games.state)
    stepped = np.ones(1, bool)
    actions = np.array([moves], np.int8)
    games.step(actions)
    events = step_events(games, snapshot, actions, stepped, games.finished())
    return {name: events[0, :, i].tolist() for i, name in enumerate(EVENTS)}


def _p(x: int, y: int) -> dict:
    return {"x": x, "y": y}


def test_events_name_what_happened_to_each_snake() -> None:
    settings = GameSettings(width=7, height=7, minimum_food=0, food_spawn_chance=0)
    board = {"width": 7, "height": 7, "food": [_p(3, 3), _p(6, 6)], "hazards": [], "snakes": [
        {"id": "long", "health": 50, "body": [_p(2, 3), _p(1, 3), _p(0, 3), _p(0, 2)]},  # right onto food (3,3)
        {"id": "short", "health": 50, "body": [_p(4, 3), _p(5, 3), _p(6, 3)]},  # left onto (3,3): head-to-head
        {"id": "back", "health": 50, "body": [_p(1, 5), _p(1, 6), _p(2, 6)]},  # up: into its own neck
        {"id": "wall", "health": 50, "body": [_p(6, 0), _p(5, 0), _p(4, 0)]}]}  # right: off the board
    events = _events_of(board, [3, 2, 0, 3], settings)
    assert events["ate_food"] == [1, 1, 0, 0]
    assert events["ate_another_snake"] == [1, 0, 0, 0]
    assert events["was_eaten"] == [0, 1, 0, 0]
    assert events["hit_self"] == [0, 0, 1, 0] and events["forbidden_move"] == [0, 0, 1, 0]
    assert events["hit_wall"] == [0, 0, 0, 1]
    assert events["died"] == [0, 1, 1, 1] and events["another_turn"] == [1, 0, 0, 0]
    assert events["won"] == [1, 0, 0, 0]


def test_reward_presets_weigh_the_events() -> None:
    hitl = RewardConfig.preset("starter-pack-hitl")
    events = np.zeros((1, 2, len(EVENTS)), np.int32)
    events[0, 0, EVENTS.index("another_turn")] = 1
    events[0, 0, EVENTS.index("won")] = 1
    events[0, 1, EVENTS.index("died")] = 1
    events[0, 1, EVENTS.index("hit_wall")] = 1
    assert hitl(events).tolist() == [[pytest.approx(5.01), -7.0]]
    assert make_rewards({"ate_food": 3}).weights == {"ate_food": 3}
    assert set(PRESETS) >= {"default", "starter-pack-hitl"}


def test_unknown_reward_events_and_presets_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown reward events \\['ate_apple'\\]"):
        RewardConfig({"ate_apple": 1.0})
    with pytest.raises(ValueError, match="unknown reward preset 'gentle'"):
        make_rewards("gentle")
    with pytest.raises(ValueError, match="reward weight 'won' must be a finite number, got nan"):
        RewardConfig({"won": float("nan")})


def test_the_vector_env_autoresets_on_the_next_step() -> None:
    env = BattlesnakeVectorEnv(num_envs=4, num_snakes=2, max_turns=20)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, *env.single_observation_space.shape) and info["action_mask"].shape == (4, 4)
    ended = np.zeros(4, bool)
    for _ in range(25):
        obs, rewards, terms, truncs, info = env.step(np.zeros(4, np.int64))  # up, up, ...: walls come fast
        if ended.any():
            assert not (terms | truncs)[ended].any() and (rewards[ended] == 0).all()  # the reset step
        ended = terms | truncs
        assert env.observation_space.contains(obs)


@pytest.mark.parametrize("opponents", ["safe", "flood", "random"])
def test_the_vector_env_equals_single_envs_step_for_step(opponents: str) -> None:
    num_envs, seed, steps = 4, 11, 120
    vector = BattlesnakeVectorEnv(num_envs=num_envs, num_snakes=3, opponents=opponents, max_turns=60)
    singles = [BattlesnakeEnv(num_snakes=3, opponents=opponents, max_turns=60) for _ in range(num_envs)]
    v_obs, _ = vector.reset(seed=seed)
    s_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    pending = np.zeros(num_envs, bool)  # single envs whose episode ended: they reset on the next step
    rng = np.random.default_rng(0)
    for _ in range(steps):
        assert all(np.array_equal(v_obs[i], s_obs[i]) for i in range(num_envs))
        actions = rng.integers(0, 4, num_envs)
        v_obs, v_rew, v_term, v_trunc, _ = vector.step(actions)
        for i, env in enumerate(singles):
            if pending[i]:
                s_obs[i], _ = env.reset()
                assert v_rew[i] == 0 and not v_term[i] and not v_trunc[i]
                pending[i] = False
                continue
            s_obs[i], rew, term, trunc, _ = env.step(int(actions[i]))
            assert (rew, term, trunc) == (v_rew[i], v_term[i], v_trunc[i])
            pending[i] = term or trunc
