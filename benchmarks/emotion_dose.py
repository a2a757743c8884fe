"""``python -m benchmarks.emotion_dose``: the dose-response curve of emotional influence.

For each emotional influence κ of the v1 negotiation rules (``negotiation_core.V1_RULES``), two
figures side by side, each from its own committed benchmark run:

* what reading the partners' emotions is worth to a model-free learner: the value of emotional
  information V of SB3 PPO (``benchmarks/emotion_value.py``; κ = 0 is the objective twin);
* LEWM against the emotion-blind world model of the same capacity, predicting the partner's next
  act: one-step and open-loop (H = 5) accuracy and macro-F1, LEWM minus blind paired by seed
  (``benchmarks/prediction.py``, its default-budget regime).

Whether LEWM's advantage grows with κ is what the paper's claim predicts. This module runs no
training: it reads the two benchmarks' result files and writes ``dose.md``, ``dose.json`` and
``dose.png``. The commands that fill them::

    python -m benchmarks.emotion_value --envs SocialNegotiation-v0 ObjectiveNegotiation-v0 \\
        --kappas 1 --rules accept_first walk_ends_relationship mood_decides planned_counter \\
        --seeds 5 --out benchmarks/results/emotion_value_design/planned_counter_5seeds
    python -m benchmarks.emotion_value --envs SocialNegotiation-v0 --kappas 0.5 2 4 \\
        --rules accept_first walk_ends_relationship mood_decides planned_counter --seeds 3 \\
        --populations default --jobs 1 --out benchmarks/results/emotion_dose/value
    python -m benchmarks.prediction --envs SocialNegotiation-v1 --kinds lewm blind \\
        --groups main --seeds 3 --emotion-influence K \\
        --out-dir benchmarks/results/emotion_dose/prediction_kK     # K in 0 0.5 1 2 4
    python -m benchmarks.emotion_dose
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from lewm_rl.envs import negotiation_core as C

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "emotion_dose"
KAPPAS = (0.0, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Config:
    """Dose-response report (reads result files, trains nothing)."""

    value: tuple[Path, ...] = (RESULTS / "emotion_value_design" / "planned_counter_5seeds"
                               / "results.json", OUT / "value" / "results.json")
    """``results.json`` files of ``benchmarks.emotion_value`` runs on the v1 rules."""
    kappas: tuple[float, ...] = KAPPAS
    """Influence values of the curve."""
    out: Path = OUT
    """Where dose.md, dose.json and dose.png go; the prediction runs are read from
    ``<out>/prediction_k<κ>/prediction.json``."""


def value_points(results: list[dict[str, Any]], rules: tuple[str, ...]) -> dict[float, dict]:
    """PPO's value of emotional information by κ, on the default partners, cues against filtered,
    for the negotiation under ``rules`` (an objective twin's row is κ = 0). Where several files
    hold a κ, the one with more seeds wins."""
    out: dict[float, dict] = {}
    for res in results:
        for r in res["rows"]:
            if (r["learner"] != "ppo" or r["view"] != "cues" or r["population"] != "default"
                    or tuple(r["rules"]) != tuple(rules) or "Negotiation" not in r["env"]):
                continue
            kappa = 0.0 if r["env"].startswith("Objective") else (
                1.0 if r["kappa"] is None else float(r["kappa"]))
            point = {"value": r["value"], "low": r["low"], "high": r["high"],
                     "seeds": min(r["seeds"]), "env": r["env"]}
            if kappa not in out or point["seeds"] > out[kappa]["seeds"]:
                out[kappa] = point
    return out


DIFFERENCES = (("one-step", "default"), ("open-loop H=5", "open-loop H=5"))
"""(column, key of ``summary.differences``) of the prediction figures."""


def prediction_point(summary: dict[str, Any]) -> dict[str, Any]:
    """LEWM minus blind (points) of one prediction run's only env: one-step and H=5, accuracy
    and macro-F1, each ``(mean, low, high, n)``."""
    (diffs,) = summary["differences"].values()
    out = {}
    for name, key in DIFFERENCES:
        for metric in ("accuracy", "macro_f1"):
            d = diffs.get(key, {}).get(metric)
            out[f"{name} {metric}"] = None if d is None else {
                k: (100 * d[k] if k != "n" else d[k]) for k in ("mean", "low", "high", "n")}
    return out


def _fmt(p: dict | None, scale: float = 1.0, unit: str = "") -> str:
    if p is None:
        return "not measured"
    mean = p.get("mean", p.get("value"))
    return (f"{scale * mean:+.1f}{unit} [{scale * p['low']:+.1f}, {scale * p['high']:+.1f}]")


def render(value: dict[float, dict], prediction: dict[float, dict], kappas: tuple[float, ...]
           ) -> str:
    cols = [f"{n} {m}" for n, _ in DIFFERENCES for m in ("accuracy", "macro_f1")]
    lines = [
        "# Dose-response: emotional influence κ on the v1 negotiation rules",
        "",
        f"Rules: `{' '.join(C.V1_RULES)}` (`SocialNegotiation-v1` is κ = "
        f"{C.V1_EMOTION_INFLUENCE:g}; κ = 0 is `ObjectiveNegotiation-v1`). Machine: 2-core Intel "
        "Xeon, no GPU, torch 2.13 CPU. Intervals: 95 % bootstrap over seeds.",
        "",
        "- V: PPO's value of emotional information, (R_cues - R_filtered) / (R_cues - R_random), "
        "default partners, 300k env steps (`benchmarks/emotion_value.py`).",
        "- LEWM - blind: next-act prediction of the partner, points, paired by seed, default "
        "budget (`benchmarks/prediction.py --groups main`).",
        "",
        "| κ | V (PPO) [95 % CI] | seeds | " + " | ".join(f"LEWM - blind {c}" for c in cols)
        + " | seeds |",
        "|---:|---|---:|" + "---|" * len(cols) + "---:|",
    ]
    for k in kappas:
        v, p = value.get(k), prediction.get(k)
        n = "" if p is None else str(next((x["n"] for x in p.values() if x), ""))
        lines.append(
            f"| {k:g} | {_fmt(v, 100, ' %')} | {'' if v is None else v['seeds']} | "
            + " | ".join(_fmt(None if p is None else p[c]) for c in cols) + f" | {n} |")
    return "\n".join(lines) + "\n"


def plot(value: dict[float, dict], prediction: dict[float, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    ks = sorted(value)
    a.errorbar(ks, [100 * value[k]["value"] for k in ks],
               yerr=[[100 * (value[k]["value"] - value[k]["low"]) for k in ks],
                     [100 * (value[k]["high"] - value[k]["value"]) for k in ks]],
               marker="o", capsize=3)
    a.axhline(15, ls="--", c="grey", lw=1, label="criterion (15 %)")
    a.axhline(0, c="k", lw=0.5)
    a.set(xlabel="emotional influence κ", ylabel="V, PPO (%)",
          title="what reading emotions is worth")
    a.legend(fontsize=8)
    for col in ("one-step macro_f1", "open-loop H=5 macro_f1"):
        ks = sorted(k for k in prediction if prediction[k].get(col))
        pts = [prediction[k][col] for k in ks]
        b.errorbar(ks, [p["mean"] for p in pts],
                   yerr=[[p["mean"] - p["low"] for p in pts], [p["high"] - p["mean"] for p in pts]],
                   marker="o", capsize=3, label=col.replace("_", "-"))
    b.axhline(0, c="k", lw=0.5)
    b.set(xlabel="emotional influence κ", ylabel="LEWM - blind (points)",
          title="next-act prediction")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cfg: Config) -> int:
    results = [json.loads(p.read_text()) for p in cfg.value if p.exists()]
    value = value_points(results, C.V1_RULES)
    prediction = {}
    for k in cfg.kappas:
        p = cfg.out / f"prediction_k{k:g}" / "prediction.json"
        if p.exists():
            prediction[k] = prediction_point(json.loads(p.read_text())["summary"])
    if not value and not prediction:
        print(f"error: no results found (looked in {', '.join(map(str, cfg.value))} and "
              f"{cfg.out}/prediction_k*/); run the commands in this module's docstring first")
        return 2
    cfg.out.mkdir(parents=True, exist_ok=True)
    text = render(value, prediction, cfg.kappas)
    (cfg.out / "dose.md").write_text(text)
    (cfg.out / "dose.json").write_text(json.dumps(
        {"rules": list(C.V1_RULES), "value": {f"{k:g}": v for k, v in value.items()},
         "prediction": {f"{k:g}": v for k, v in prediction.items()}}, indent=1))
    plot(value, prediction, cfg.out / "dose.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(Config)))
