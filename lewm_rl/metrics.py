"""Classification metrics as affective computing reports them (accuracy, macro and weighted F1)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts, rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes)


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and weighted-F1.

    Macro-F1 averages the per-class F1 over the classes present in ``y_true`` or ``y_pred`` (a
    class never seen nor predicted is not counted); weighted-F1 weights each class by its support.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(float)
    tp = np.diag(cm)
    support = cm.sum(1)
    predicted = cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support + predicted) > 0
    total = cm.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "weighted_f1": (float((f1 * support).sum() / support.sum()) if support.sum()
                        else float("nan")),
    }


def class_frequencies(y: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K,)`` share of each class in ``y``."""
    counts = np.bincount(np.asarray(y).ravel(), minlength=num_classes).astype(float)
    return counts / max(counts.sum(), 1.0)
