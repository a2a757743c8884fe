"""``python -m lewm_rl.play``: take the learner's seat yourself, at the terminal.

You see what the agent sees (the task state, the partner's last act, its noisy expression and
tone; never its emotion), and after each deal (each round in public goods) the partner's true
emotion is revealed. On a Gymnasium env you face the env's emotional partner; on a PettingZoo env
you take seat 0 against a trained run's agent in the other seat(s) (``--run``).

Examples::

    python -m lewm_rl.play --env SocialNegotiation-v0 --population volatile
    python -m lewm_rl.play --run runs/social_negotiation_v0__dreamer__s0__<time>/lewm
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lewm_rl.envs import EMOTIONS, GYM_ENV_IDS, TONES


@dataclass(frozen=True)
class PlayConfig:
    """Play an environment yourself."""

    env: str = "SocialNegotiation-v0"
    """Environment id (ignored with --run, which names its own)."""
    run: str | None = None
    """A trained run: its env, and on a PettingZoo env its agent in the other seats."""
    population: str = "default"
    """Partner population."""
    seed: int = 0
    """Episode seed."""


def describe_observation(env_id: str, obs: dict[str, np.ndarray],
                         clock: tuple[int, int] = (4, 6)) -> list[str]:
    """The cues an agent sees, as lines a person can read (no label among them).

    Args:
        clock: a negotiation's ``(n_deals, round_limit)``, to read its clock features.
    """
    lines = []
    task = np.asarray(obs.get("task", []), dtype=float).ravel()
    if "Negotiation" in env_id or "negotiation" in env_id:
        from lewm_rl.envs import negotiation_core as C

        f = dict(zip(C.TASK_FIELDS, task, strict=False))
        vals = ", ".join(f"{n} {f[f'value_{n}'] * 10:.0f}" for n in C.ITEM_NAMES)
        deal, rnd = round(f["deal"] * clock[0]) + 1, round(f["round"] * clock[1]) + 1
        lines.append(f"deal {deal}/{clock[0]}, round {rnd}/{clock[1]} | your values: {vals} "
                     "| items: book 1, hat 2, ball 3")
        if f["their_offer_standing"] > 0.5:
            gives = ", ".join(f"{n} {round(f[f'their_offer_{n}'] * c)}"
                              for n, c in zip(C.ITEM_NAMES, C.ITEM_COUNTS, strict=True))
            lines.append(f"partner's standing offer leaves you: {gives} "
                         f"(worth {f['their_offer_utility'] * 10:.1f} to you)")
        lines.append(f"partner's last act: {C.ACTS[int(np.ravel(obs['partner_act'])[0])]}")
    elif task.size:
        lines.append("task: " + " ".join(f"{x:.2f}" for x in task))
    if "expression" in obs:
        faces = np.atleast_2d(obs["expression"])
        for i, row in enumerate(faces):
            who = f"P{i + 1} " if len(faces) > 1 else ""
            lines.append(f"{who}face (noisy): " + "  ".join(
                f"{n} {v:+.1f}" for n, v in zip(EMOTIONS, row, strict=True)))
    if "tone" in obs:
        lines.append("tone: " + ", ".join(TONES[int(t)] for t in np.ravel(obs["tone"])))
    return lines


def action_names(env_id: str, n: int) -> list[str]:
    """A readable name for every action of the learner's seat."""
    if "egotiation" in env_id:
        from lewm_rl.envs.negotiation import describe_action

        return [describe_action(a) for a in range(n)]
    if "ublic" in env_id:
        from lewm_rl.envs.public_goods import describe_action

        players = 4
        return [describe_action(a, 0, players) for a in range(n)]
    return [str(a) for a in range(n)]


def ask_action(n: int, names: list[str], input_fn: Callable[[str], str],
               print_fn: Callable[[str], None]) -> int | None:
    """Reads a move: a number, ``h`` to list the moves, ``q`` to quit (``None``)."""
    while True:
        text = input_fn(f"your move (0-{n - 1}, h lists them, q quits): ").strip().lower()
        if text in ("q", "quit"):
            return None
        if text in ("h", "help", "?"):
            for a, name in enumerate(names):
                print_fn(f"  {a:3d}  {name}")
            continue
        if text.isdigit() and 0 <= int(text) < n:
            return int(text)
        print_fn(f"'{text}' is not a move; allowed: a number in 0-{n - 1}, h or q")


def play(cfg: PlayConfig, input_fn: Callable[[str], str] = input,
         print_fn: Callable[[str], None] = print) -> float:
    """Plays one episode with a person in seat 0; returns the person's return."""
    run = None
    env_id, population = cfg.env, cfg.population
    if cfg.run:
        from lewm_rl.runs import load_run

        run = load_run(cfg.run)
        env_id = run.config.env
    if env_id in GYM_ENV_IDS:
        return _play_gym(env_id, population, cfg.seed, input_fn, print_fn)
    if run is None:
        raise ValueError(f"{env_id} is a PettingZoo env: pass --run with a trained run of it "
                         "to play against (a Gymnasium id needs no run)")
    return _play_pettingzoo(run, population, cfg.seed, input_fn, print_fn)


def _clock(env) -> tuple[int, int]:
    core = getattr(getattr(env, "unwrapped", env), "core", None)
    return (int(getattr(core, "n_deals", 4)), int(getattr(core, "round_limit", 6)))


def _reveal(info: dict, print_fn: Callable[[str], None], every_step: bool) -> None:
    from lewm_rl.envs import negotiation_core as C

    outcome = int(np.ravel(info.get("deal_outcome", [0]))[0])
    if outcome or every_step:
        labels = np.ravel(info["emotion"])
        felt = ", ".join((f"P{i + 1} " if len(labels) > 1 else "") + EMOTIONS[int(e)]
                         for i, e in enumerate(labels))
        closed = f"deal closed: {C.OUTCOMES[outcome]}; " if outcome else ""
        who = "the others" if len(labels) > 1 else "the partner"
        print_fn(f"** {closed}{who} really felt: {felt}")


def _play_gym(env_id: str, population: str, seed: int, input_fn, print_fn) -> float:
    import gymnasium as gym

    env = gym.make(env_id, population=population)
    obs, info = env.reset(seed=seed)
    names = action_names(env_id, env.action_space.n)
    every_step = "ublic" in env_id
    total, done, t = 0.0, False, 0
    while not done:
        print_fn(f"\n-- step {t}")
        for line in describe_observation(env_id, obs, _clock(env)):
            print_fn(line)
        action = ask_action(env.action_space.n, names, input_fn, print_fn)
        if action is None:
            break
        obs, reward, term, trunc, info = env.step(action)
        total += float(reward)
        print_fn(f"you: {names[action]} -> reward {reward:.2f} (total {total:.2f})")
        _reveal(info, print_fn, every_step)
        done, t = term or trunc, t + 1
    print_fn(f"\nepisode over: your return {total:.2f}")
    return total


def _play_pettingzoo(run, population: str, seed: int, input_fn, print_fn) -> float:
    import torch

    from lewm_rl.envs.wrappers import filter_cues
    from lewm_rl.world_models.codec import to_tensor_obs

    c = run.config
    mod = importlib.import_module(f"lewm_rl.envs.{c.env}")
    env = mod.parallel_env(population=population, annotation_noise=c.annotation_noise)
    obs, infos = env.reset(seed=seed)
    me = env.possible_agents[0]
    names = action_names(c.env, env.action_space(me).n)
    carry: dict[int, object] = {}
    first, total, t = True, 0.0, 0
    while env.agents:
        actions = {}
        for ln in run.learners:
            others = [s for s in ln.seats if s != me]
            if not others:
                continue
            seen = {k: np.stack([np.asarray(obs[s][k]) for s in others]) for k in obs[others[0]]}
            if c.filter_cues:  # the agents see what they were trained on
                seen = filter_cues(seen, env.observation_space(others[0]), batched=True)
            o = to_tensor_obs(seen, ln.wm.mods, ln.device)
            a, carry[id(ln)] = ln.agent.act(carry.get(id(ln)), o,
                                            torch.full((len(others),), first), explore=False)
            actions.update({s: int(x) for s, x in zip(others, a.tolist(), strict=True)})
        print_fn(f"\n-- step {t}")
        for line in describe_observation(c.env, obs[me], _clock(env)):
            print_fn(line)
        action = ask_action(env.action_space(me).n, names, input_fn, print_fn)
        if action is None:
            break
        actions[me] = action
        obs, rewards, term, trunc, infos = env.step(actions)
        total += float(rewards.get(me, 0.0))
        print_fn(f"you: {names[action]} -> reward {rewards.get(me, 0.0):.2f} (total {total:.2f})")
        if me in infos:
            _reveal(infos[me], print_fn, "ublic" in c.env)
        first, t = False, t + 1
    print_fn(f"\nepisode over: your return {total:.2f}")
    return total


def main(argv: list[str] | None = None) -> int:
    import tyro

    try:
        cfg = tyro.cli(PlayConfig, args=argv, prog="python -m lewm_rl.play",
                       description=__doc__.split("\n\n")[0])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        from lewm_rl.env_adapters import check_env_id
        from lewm_rl.envs.affect import check_population

        check_env_id(cfg.env)
        check_population(cfg.population)
        play(cfg)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
