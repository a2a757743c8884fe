"""TensorBoard output beyond scalars (hyperparameter tables, emotion figures, transcripts, GIFs),
and the one reader of a run's logged scalars."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def read_scalars(run_dir: str | Path, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, values, wall times)`` of scalar ``tag`` in a run directory's TensorBoard events,
    by step; a step logged more than once (a resumed run repeats the steps after its last
    checkpoint) keeps the value logged last. Empty arrays where the tag was never logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return np.zeros(0, int), np.zeros(0), np.zeros(0)
    events = acc.Scalars(tag)
    steps = np.array([e.step for e in events])
    values = np.array([e.value for e in events])
    wall = np.array([e.wall_time for e in events])
    _, last = np.unique(steps[::-1], return_index=True)
    keep = np.sort(len(steps) - 1 - last)
    return steps[keep], values[keep], wall[keep]


def hyperparameter_table(config: dict[str, Any]) -> str:
    """A markdown table of a (flattened) config, as CleanRL logs it first."""
    rows = "\n".join(f"|{k}|{v}|" for k, v in sorted(_flatten(config).items()))
    return "|param|value|\n|-|-|\n" + rows


def hparams(config: dict[str, Any]) -> dict[str, Any]:
    """A (flattened) config as ``SummaryWriter.add_hparams`` takes it: numbers, strings and bools
    stay, anything else (tuples, ``None``) becomes its string."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v)
            for k, v in sorted(_flatten(config).items())}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def emotion_figure(predicted: np.ndarray | None, true: np.ndarray, names: Sequence[str],
                   title: str):
    """Predicted emotion distribution (heatmap) against the true emotion (dots) over an episode.

    Args:
        predicted: ``(T, K)`` probabilities, or ``None`` for an emotion-blind model.
        true: ``(T,)`` true labels.
        names: class names.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=80)
    T = len(true)
    if predicted is not None:
        ax.imshow(predicted.T, aspect="auto", origin="lower", cmap="Blues", vmin=0, vmax=1,
                  extent=(-0.5, T - 0.5, -0.5, len(names) - 0.5))
    ax.plot(np.arange(T), true, "o", color="crimson", ms=4, label="true emotion")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def what_if_figure(probs: np.ndarray, emotion_names: Sequence[str],
                   behaviour_names: Sequence[str], title: str):
    """The partner's predicted response with its emotion forced to each class.

    Args:
        probs: ``(K, A)`` predicted probability of each response (columns) per forced emotion.
        emotion_names: ``K`` names; behaviour_names: ``A`` names (e.g. none, counter, accept,
            walk_away; ``none`` is not drawn).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3), dpi=80)
    shown = [i for i, n in enumerate(behaviour_names) if n != "none"]
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(emotion_names))
    for j, i in enumerate(shown):
        ax.bar(x + (j - (len(shown) - 1) / 2) * width, probs[:, i], width,
               label=behaviour_names[i])
    ax.set_xticks(x, emotion_names, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("predicted probability")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def label_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` ``(H, W, 3)`` with ``text`` written on a dark band along its top."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width, 12), fill=(20, 20, 20))
    draw.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(image)


def gif_summary(tag: str, frames: Sequence[np.ndarray], fps: int = 2):
    """An image summary holding an animated GIF of ``frames`` (TensorBoard plays it).

    Encoded with Pillow (a matplotlib dependency), so no video library is needed.
    """
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0)
    h, w = np.asarray(frames[0]).shape[:2]
    image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=buf.getvalue())
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def comparison_layout(populations: Sequence[str]) -> dict[str, dict[str, list]]:
    """A custom-scalars layout: per population, one chart of the learners' evaluation return with
    the scripted references, and one of the normalised return (random = 0, oracle = 1).

    Custom-scalars charts draw every run in the logdir, so a ``--compare`` run shows LEWM, blind
    and the references together (``add_custom_scalars(layout)``; tags are regular expressions).

    Args:
        populations: the training population first, then the held-out ones.
    """
    charts: dict[str, list] = {}
    for i, pop in enumerate(populations):
        prefix = "eval" if i == 0 else f"eval/{pop}"
        charts[f"{pop}: return and references"] = [
            "Multiline", [f"^{prefix}/episode_return$", f"^{prefix}/reference/"]]
        charts[f"{pop}: normalised return (random 0, oracle 1)"] = [
            "Multiline", [f"^{prefix}/normalised_return$"]]
    charts["emotion on evaluation episodes"] = [
        "Multiline", ["^eval/emotion_accuracy$", "^eval/emotion_macro_f1$"]]
    return {"LEWM vs blind": charts}
