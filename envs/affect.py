"""The emotion model every environment shares: taxonomy, core affect, appraisal, cues, annotators.

Everything here is batched over leading axes and written in plain numpy, so the Gymnasium
environment, the vector environment and the PettingZoo environment run the same code.

The model, in the order an environment uses it each step:

1. **Core affect.** Each character carries a continuous (valence, arousal, dominance) vector in
   [-1, 1]^3 (Mehrabian & Russell's PAD space). Each step it relaxes toward the persona's baseline
   and moves by the appraisal impulse, scaled by the persona's reactivity:
   ``affect <- clip(affect + decay * (baseline - affect) + reactivity * impulse, -1, 1)``.
   Nothing resets it between deals, so moods carry over.
2. **Category.** The discrete emotion is the nearest prototype in PAD space among the seven MELD
   categories. The prototypes are the PAD ratings of Russell & Mehrabian (1977), with neutral at
   the origin.
3. **Cues.** The learner never sees the category. It sees a 7-dimensional *expression* vector,
   ``expressivity * EXPRESSION_GAIN * onehot(category) + EXPRESSION_NOISE * N(0, I)``, and the tone
   of the character's last message (drawn from the emotion with probability ``TONE_FIDELITY``,
   otherwise uniformly). The noise level is fixed so that the best single-step reader of the cues
   is about as accurate as current recognisers on in-the-wild data (60-70 % on 7 classes, as on
   MELD or AffectNet); ``benchmarks/baselines.py`` measures and reports it.
4. **Annotation.** ``info['emotion_annotated']`` is the true label passed through an annotator:
   with probability ``annotation_noise`` the label is replaced by a draw from the neighbouring
   emotions (weights ``exp(-d^2 / 0.25)`` over PAD distance ``d``, excluding the true one), the
   kind of confusion automatic annotation makes (EWH-style weak supervision).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

EMOTIONS: tuple[str, ...] = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
"""The 7 MELD categories, in label order."""

NEUTRAL, JOY, SURPRISE, ANGER, SADNESS, DISGUST, FEAR = range(7)
NUM_EMOTIONS = len(EMOTIONS)

PROTOTYPES = np.array(
    [
        [0.00, 0.00, 0.00],  # neutral
        [0.81, 0.51, 0.46],  # joy (Russell & Mehrabian 1977: "happy")
        [0.40, 0.67, -0.13],  # surprise
        [-0.51, 0.59, 0.25],  # anger
        [-0.63, -0.27, -0.33],  # sadness
        [-0.60, 0.35, 0.11],  # disgust
        [-0.64, 0.60, -0.43],  # fear
    ]
)
"""(K, 3) PAD prototypes of the categories."""

TONES: tuple[str, ...] = ("neutral", "warm", "assertive", "apologetic")
"""Tones of a message, shared by learners and characters."""
TONE_NEUTRAL, TONE_WARM, TONE_ASSERTIVE, TONE_APOLOGETIC = range(4)
NUM_TONES = len(TONES)

TONE_OF_EMOTION = np.array(
    [TONE_NEUTRAL, TONE_WARM, TONE_NEUTRAL, TONE_ASSERTIVE, TONE_APOLOGETIC, TONE_ASSERTIVE,
     TONE_APOLOGETIC]
)
"""(K,) the tone a character in each emotion uses (anger and disgust sound assertive, joy warm,
sadness and fear apologetic)."""

TONE_FIDELITY = 0.7
"""Probability that a character's tone follows its emotion; otherwise it is uniform."""

EXPRESSION_GAIN = 1.0
EXPRESSION_BOUND = 8.0
"""Expression vectors are clipped to +-8 (about 9 noise standard deviations: no effect in practice)
so the observation space is bounded."""
EXPRESSION_NOISE = 0.85
"""Cue noise, fixed once (v0) so that the best single-step reader is ~65 % accurate on the default
population; measured in ``benchmarks/results/baselines.md``. Never tuned for a model."""

ANNOTATOR_TEMPERATURE = 0.25

_sq = ((PROTOTYPES[:, None, :] - PROTOTYPES[None, :, :]) ** 2).sum(-1)
_w = np.exp(-_sq / ANNOTATOR_TEMPERATURE)
np.fill_diagonal(_w, 0.0)
ANNOTATOR_CONFUSION = _w / _w.sum(1, keepdims=True)
"""(K, K) where a mistaken annotation of emotion i lands: mostly on its PAD neighbours."""
ANNOTATOR_CDF = np.cumsum(ANNOTATOR_CONFUSION, axis=1)
del _sq, _w

_EYE = np.eye(NUM_EMOTIONS)


def categorize(affect: np.ndarray) -> np.ndarray:
    """Reads the category off the core affect (nearest prototype).

    Args:
        affect: ``(..., 3)`` PAD vectors.

    Returns:
        ``(...)`` int64 labels in ``[0, 7)``.
    """
    sq = (affect[..., None, :] - PROTOTYPES) ** 2  # (..., K, 3)
    # Summed term by term: the same sums as .sum(-1), much faster on large batches.
    return (sq[..., 0] + sq[..., 1] + sq[..., 2]).argmin(-1)


def update_affect(
    affect: np.ndarray,
    baseline: np.ndarray,
    decay: np.ndarray,
    reactivity: np.ndarray,
    impulse: np.ndarray,
) -> np.ndarray:
    """One step of core-affect dynamics: relax toward baseline, then add the appraisal impulse.

    Args:
        affect, baseline, impulse: ``(..., 3)`` PAD vectors.
        decay, reactivity: ``(...)`` persona traits.

    Returns:
        The new ``(..., 3)`` affect, clipped to ``[-1, 1]``.
    """
    new = affect + decay[..., None] * (baseline - affect) + reactivity[..., None] * impulse
    return np.minimum(np.maximum(new, -1.0), 1.0)  # np.clip, without its Python overhead


def expression_cues(
    emotion: np.ndarray, expressivity: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """The noisy expression vector a character shows.

    Args:
        emotion: ``(...)`` labels.
        expressivity: ``(...)`` persona trait in ``[0, 1]``.
        noise: ``(..., K)`` standard-normal draws.

    Returns:
        ``(..., K)`` float32 expression vector.
    """
    signal = _EYE[emotion] * (EXPRESSION_GAIN * expressivity)[..., None]
    cues = np.minimum(np.maximum(signal + EXPRESSION_NOISE * noise, -EXPRESSION_BOUND),
                      EXPRESSION_BOUND)  # np.clip, without its Python overhead
    return cues.astype(np.float32)


def draw_tone(emotion: np.ndarray, u_follow: np.ndarray, u_tone: np.ndarray) -> np.ndarray:
    """The tone of a character's message: its emotion's tone, or with prob. 0.3 a uniform one.

    Args:
        emotion: ``(...)`` labels.
        u_follow, u_tone: ``(...)`` uniform draws in ``[0, 1)``.
    """
    random_tone = np.minimum((u_tone * NUM_TONES).astype(np.int64), NUM_TONES - 1)
    return np.where(u_follow < TONE_FIDELITY, TONE_OF_EMOTION[emotion], random_tone)


def annotate(
    emotion: np.ndarray, noise_level: float, u_flip: np.ndarray, u_pick: np.ndarray
) -> np.ndarray:
    """Passes true labels through the annotator noise model.

    Args:
        emotion: ``(...)`` true labels.
        noise_level: probability that an annotation is wrong, in ``[0, 1]``.
        u_flip, u_pick: ``(...)`` uniform draws.

    Returns:
        ``(...)`` annotated labels.
    """
    cdf = ANNOTATOR_CDF[emotion]  # (..., K)
    wrong = (u_pick[..., None] > cdf).sum(-1)
    wrong = np.minimum(wrong, NUM_EMOTIONS - 1)
    return np.where(u_flip < noise_level, wrong, emotion)


def best_single_step_reader(
    expression: np.ndarray, tone: np.ndarray, expressivity: float | np.ndarray,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """The Bayes-optimal single-step reader of the cues, given the cue model above.

    It knows the generative model of the cues (gain, noise, tone table) and, optionally, the class
    prior; it is the ceiling for any reader of one step's cues. Used to report cue reliability.

    Args:
        expression: ``(N, K)`` expression vectors.
        tone: ``(N,)`` tones.
        expressivity: the characters' expressivity, scalar or ``(N,)``.
        prior: ``(K,)`` class prior; uniform when omitted.

    Returns:
        ``(N,)`` predicted labels.
    """
    mean = np.eye(NUM_EMOTIONS) * EXPRESSION_GAIN  # (K, K): row = class mean / expressivity
    s = np.broadcast_to(np.asarray(expressivity, dtype=float), tone.shape)
    diff = expression[:, None, :] - s[:, None, None] * mean[None]  # (N, K, K)
    loglik = -0.5 * (diff**2).sum(-1) / EXPRESSION_NOISE**2  # (N, K)
    p_tone = np.full((NUM_EMOTIONS, NUM_TONES), (1 - TONE_FIDELITY) / NUM_TONES)
    p_tone[np.arange(NUM_EMOTIONS), TONE_OF_EMOTION] += TONE_FIDELITY
    loglik = loglik + np.log(p_tone[:, tone].T)
    if prior is not None:
        loglik = loglik + np.log(np.maximum(prior, 1e-12))
    return loglik.argmax(-1)


@dataclass(frozen=True)
class AffectTraits:
    """Ranges (uniform) of the emotional traits of a persona population.

    Each field is a ``(low, high)`` pair drawn uniformly per character at reset.
    """

    valence: tuple[float, float] = (-0.1, 0.3)
    """Baseline valence."""
    arousal: tuple[float, float] = (-0.2, 0.2)
    """Baseline arousal."""
    dominance: tuple[float, float] = (-0.6, 0.6)
    """Baseline dominance: high turns unfairness into anger, low into fear."""
    reactivity: tuple[float, float] = (0.6, 1.2)
    """Scale of the appraisal impulse."""
    decay: tuple[float, float] = (0.05, 0.2)
    """Fraction of the distance to baseline recovered each step."""
    expressivity: tuple[float, float] = (0.7, 1.0)
    """Strength of the expression cue."""

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(6,)`` lows and spans of the traits, in ``sample``'s column order."""
        lo = np.array([self.valence[0], self.arousal[0], self.dominance[0], self.reactivity[0],
                       self.decay[0], self.expressivity[0]])
        hi = np.array([self.valence[1], self.arousal[1], self.dominance[1], self.reactivity[1],
                       self.decay[1], self.expressivity[1]])
        return lo, hi - lo

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """Draws ``n`` characters' traits; ``baseline`` is ``(n, 3)``, the rest ``(n,)``."""
        return self.from_uniform(rng.random((n, 6)))

    def from_uniform(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """The traits ``sample`` makes of its uniform draws ``u`` ``(..., 6)``: ``baseline`` is
        ``(..., 3)``, the rest ``(...)``."""
        lo, span = self._bounds
        x = lo + span * u
        return {
            "baseline": x[..., :3],
            "reactivity": x[..., 3],
            "decay": x[..., 4],
            "expressivity": x[..., 5],
        }


AFFECT_POPULATIONS: dict[str, AffectTraits] = {
    "default": AffectTraits(),
    "volatile": AffectTraits(reactivity=(1.2, 1.8), decay=(0.02, 0.06), expressivity=(0.8, 1.0)),
    "stoic": AffectTraits(reactivity=(0.4, 0.8), decay=(0.15, 0.3), expressivity=(0.3, 0.5)),
}
"""Partner populations. ``default`` trains; ``volatile`` (high reactivity, slow decay) and
``stoic`` (low reactivity and expressivity: weaker cues) are held out, as Melting Pot tests against
unseen background populations."""

POPULATIONS: tuple[str, ...] = tuple(AFFECT_POPULATIONS)


def check_population(population: str) -> AffectTraits:
    """Returns a population's traits, or raises ``ValueError`` naming the allowed ones."""
    if population not in AFFECT_POPULATIONS:
        raise ValueError(
            f"unknown population {population!r}; allowed: {', '.join(AFFECT_POPULATIONS)}"
        )
    return AFFECT_POPULATIONS[population]


def check_annotation_noise(annotation_noise: float) -> float:
    """Validates ``annotation_noise`` in [0, 1]."""
    value = float(annotation_noise)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"annotation_noise must be in [0, 1], got {annotation_noise!r}")
    return value
