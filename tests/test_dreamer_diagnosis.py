"""The Dreamer diagnosis' statistics: exact answers on hand-made moves."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.dreamer_diagnosis import moves_by_kind
from lewm_rl.envs import negotiation_core as C


def test_moves_by_kind_splits_offers_accepts_and_walk_aways():
    actions = np.array([0, 5, C.NUM_OFFER_ACTIONS - 1, C.ACCEPT])  # three offers, one accept
    predicted = np.array([0.5, 0.3, 0.1, 0.9])
    earned = np.array([0.0, 0.6, 0.0, 0.7])
    out = moves_by_kind(actions, predicted, earned)
    assert set(out) == {"offer", "accept"}  # never walked away: left out
    assert out["offer"]["share"] == pytest.approx(0.75)
    assert out["offer"]["predicted"] == pytest.approx(0.3)
    assert out["offer"]["earned"] == pytest.approx(0.2)
    assert out["accept"] == pytest.approx({"share": 0.25, "predicted": 0.9, "earned": 0.7})
    assert moves_by_kind(np.array([C.WALK_AWAY]), np.zeros(1), np.zeros(1))["walk"]["share"] == 1
