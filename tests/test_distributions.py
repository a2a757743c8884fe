"""Exact answers for the shared distributions: symlog, two-hot, the structured action head."""

from __future__ import annotations

import math

import pytest
import torch

from lewm_rl.distributions import ActionStructure, TwoHot, symexp, symlog, zero_output
from lewm_rl.envs import negotiation_core as C
from lewm_rl.envs import public_goods_core as PG


def test_symlog_exact_and_inverse():
    x = torch.tensor([-(math.e - 1), 0.0, math.e ** 2 - 1])
    torch.testing.assert_close(symlog(x), torch.tensor([-1.0, 0.0, 2.0]))
    y = torch.linspace(-1000, 1000, 101)
    torch.testing.assert_close(symexp(symlog(y)), y, rtol=1e-5, atol=1e-4)


def test_two_hot_encode_exact_on_three_bins():
    th = TwoHot(bins=3, low=-1.0, high=1.0)  # bins at symlog -1, 0, 1
    y = symexp(torch.tensor([0.25, -1.0, 5.0, -0.5]))
    torch.testing.assert_close(th.encode(y), torch.tensor([
        [0.0, 0.75, 0.25],  # a quarter of the way from bin 0 to bin 1
        [1.0, 0.0, 0.0],    # on the lowest bin
        [0.0, 0.0, 1.0],    # beyond the range: clipped onto the top bin
        [0.5, 0.5, 0.0]]))


def test_two_hot_round_trip_and_loss_minimum():
    th = TwoHot()  # DreamerV3's 255 bins over [-20, 20]
    y = torch.tensor([-123.4, -1.0, 0.0, 0.37, 2.5, 1e4])
    w = th.encode(y)
    torch.testing.assert_close(w.sum(-1), torch.ones(6))
    assert int((w > 0).sum(-1).max()) <= 2
    # Logits that put exactly the two-hot weights on the bins predict y back.
    torch.testing.assert_close(th.mean(torch.log(w.clamp_min(1e-30))), y, rtol=1e-4, atol=1e-4)
    # The cross-entropy is smallest at the target's own weights.
    best = th.loss(torch.log(w.clamp_min(1e-30)), y)
    other = th.loss(torch.log(th.encode(y + 1.0).clamp_min(1e-30)), y)
    assert bool((best < other).all())


def test_zero_output_predicts_zero():
    net = zero_output(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.SiLU(),
                                          torch.nn.Linear(4, 255)))
    assert float(TwoHot().mean(net(torch.randn(5, 3))).abs().max()) < 1e-5  # symmetric bins


def test_negotiation_structure_is_kind_then_split_and_tone():
    s = ActionStructure(C.ACTION_STRUCTURE)
    assert s.num_actions == C.NUM_ACTIONS == 98
    assert s.num_logits == 3 + C.NUM_SPLITS + 4
    head = torch.randn(7, s.num_logits, dtype=torch.float64)
    logp = s.logits(head)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(7, dtype=torch.float64))
    kind = torch.log_softmax(head[:, :3], -1)
    split = torch.log_softmax(head[:, 3:3 + C.NUM_SPLITS], -1)
    tone = torch.log_softmax(head[:, 3 + C.NUM_SPLITS:], -1)
    for a in (0, 5, 4 * 17 + 3, C.NUM_OFFER_ACTIONS - 1):
        k, j, t = (int(v[0]) for v in C.decode_action(torch.tensor([a]).numpy()))
        assert k == C.ACT_OFFER
        torch.testing.assert_close(logp[:, a], kind[:, 0] + split[:, j] + tone[:, t])
    torch.testing.assert_close(logp[:, C.ACCEPT], kind[:, 1])
    torch.testing.assert_close(logp[:, C.WALK_AWAY], kind[:, 2])


def test_public_goods_structure_is_level_times_target():
    n = 4
    s = ActionStructure(PG.action_structure(n))
    assert s.num_actions == PG.num_actions(n)
    head = torch.randn(3, s.num_logits, dtype=torch.float64)
    logp = s.logits(head)
    level = torch.log_softmax(head[:, :PG.NUM_LEVELS], -1)
    target = torch.log_softmax(head[:, PG.NUM_LEVELS:], -1)
    for lv in range(PG.NUM_LEVELS):
        for tg in range(n):
            torch.testing.assert_close(logp[:, PG.encode_action(lv, tg, n)],
                                       level[:, lv] + target[:, tg])


def test_flat_structure_is_a_softmax():
    head = torch.randn(4, 6)
    torch.testing.assert_close(ActionStructure.flat(6).logits(head),
                               torch.log_softmax(head, -1))


def test_bad_structures_are_refused():
    for kinds in ((), ((0, 3),), ((),)):
        with pytest.raises(ValueError, match="action structure"):
            ActionStructure(kinds)


@pytest.mark.parametrize("kinds", [C.ACTION_STRUCTURE, PG.action_structure(4), ((5,),)])
def test_uniform_bias_is_the_uniform_policy(kinds):
    s = ActionStructure(kinds)
    torch.testing.assert_close(s.logits(s.uniform_bias()),
                               torch.full((s.num_actions,), -math.log(s.num_actions)))


def test_entropy_exact_and_zero_probabilities_count_nothing():
    from lewm_rl.distributions import entropy

    p = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    torch.testing.assert_close(entropy(p), torch.tensor([math.log(4), 0.0, math.log(2)]))


def test_the_one_mlp_keeps_the_parameter_names_of_saved_models():
    from lewm_rl.nets import mlp

    # the actor and critic (two hidden layers) and the heads (one), as checkpoints name them
    assert list(mlp(3, 8, 2, layers=2).state_dict()) == [
        f"{i}.{p}" for i in (0, 1, 3, 4, 6) for p in ("weight", "bias")]
    net = mlp(3, 8, 2)
    assert list(net.state_dict()) == [f"{i}.{p}" for i in (0, 1, 3) for p in ("weight", "bias")]
    assert net(torch.zeros(5, 3)).shape == (5, 2)
    with pytest.raises(ValueError, match="at least one hidden layer"):
        mlp(3, 8, 2, layers=0)
