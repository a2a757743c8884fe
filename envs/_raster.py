"""Tiny numpy raster helpers for the environments' ``rgb_array`` renders (no imaging dependency)."""

from __future__ import annotations

import numpy as np

EMOTION_COLOURS = np.array(
    [
        [200, 200, 200],  # neutral: grey
        [250, 210, 60],  # joy: yellow
        [250, 160, 60],  # surprise: orange
        [220, 50, 40],  # anger: red
        [80, 120, 220],  # sadness: blue
        [110, 170, 70],  # disgust: green
        [150, 90, 200],  # fear: purple
    ],
    dtype=np.uint8,
)
# Per emotion: mouth curvature (+ smile, - frown), mouth openness, brow slant (+ angry V),
# brow lift.
_FACE = {
    0: (0.0, 0.0, 0.0, 0.0),
    1: (1.0, 0.3, 0.0, 0.1),
    2: (0.0, 1.0, 0.0, 0.8),
    3: (-0.8, 0.0, 1.0, -0.2),
    4: (-1.0, 0.0, -0.6, 0.0),
    5: (-0.5, 0.2, 0.5, -0.3),
    6: (-0.4, 0.8, -0.8, 0.6),
}


def canvas(h: int, w: int, colour=(245, 240, 230)) -> np.ndarray:
    """A blank ``(h, w, 3)`` uint8 image."""
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = colour
    return img


def disc(img: np.ndarray, cy: float, cx: float, r: float, colour) -> None:
    """Fills a disc in place."""
    h, w = img.shape[:2]
    y, x = np.ogrid[:h, :w]
    img[(y - cy) ** 2 + (x - cx) ** 2 <= r * r] = colour


def rect(img: np.ndarray, y0: int, x0: int, y1: int, x1: int, colour) -> None:
    """Fills an axis-aligned rectangle in place (clipped to the image)."""
    h, w = img.shape[:2]
    img[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = colour


def line(img: np.ndarray, y0: float, x0: float, y1: float, x1: float, colour, width: float = 1.5):
    """Draws a thick line segment in place."""
    h, w = img.shape[:2]
    y, x = np.ogrid[:h, :w]
    dy, dx = y1 - y0, x1 - x0
    length2 = max(dy * dy + dx * dx, 1e-9)
    t = np.clip(((y - y0) * dy + (x - x0) * dx) / length2, 0, 1)
    d2 = (y - (y0 + t * dy)) ** 2 + (x - (x0 + t * dx)) ** 2
    img[d2 <= width * width] = colour


def face(img: np.ndarray, cy: float, cx: float, r: float, emotion: int) -> None:
    """Draws a cartoon face whose colour and features show ``emotion``."""
    disc(img, cy, cx, r, EMOTION_COLOURS[emotion])
    curve, openness, slant, lift = _FACE[int(emotion)]
    dark = (40, 30, 30)
    ex, ey, er = 0.38 * r, cy - 0.2 * r, 0.1 * r
    for side in (-1, 1):
        disc(img, ey, cx + side * ex, er * (1 + 0.5 * openness * (emotion in (2, 6))), dark)
        by = ey - 0.25 * r - lift * 0.12 * r
        inner, outer = cx + side * 0.15 * r, cx + side * 0.6 * r
        line(img, by + slant * 0.1 * r, inner, by - slant * 0.1 * r, outer, dark, 0.05 * r + 0.5)
    my, mw = cy + 0.45 * r, 0.4 * r
    xs = np.linspace(cx - mw, cx + mw, 24)
    ys = my - curve * 0.18 * r * (1 - ((xs - cx) / mw) ** 2)
    points = list(zip(ys, xs, strict=True))
    for (ya, xa), (yb, xb) in zip(points[:-1], points[1:], strict=True):
        line(img, ya, xa, yb, xb, dark, 0.05 * r + 0.5)
    if openness > 0.5:
        disc(img, my + 0.05 * r, cx, 0.12 * r * openness, dark)
