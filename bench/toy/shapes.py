"""Silhouettes of the toy world's object classes, as lists of filled polygons.

Every shape lives in a unit box: x and y in [-1, 1], y pointing down (image convention), the
object upright. A shape is a list of :data:`Primitive` ``(tone, points)`` painted in order, later
ones over earlier ones, so details (windows, wheels, eyes) are painted on top of bodies. The
tone picks a colour at render time, never the class: ``BODY`` is the object's colour, ``DARK`` and
``LIGHT`` are shades of it, ``ACCENT`` is a second random colour, and ``ERASE`` cuts a hole back
to the background (the crescent of a moon). Each class has a few variants (poses) drawn from the
``rng`` so that no single template identifies it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

BODY, DARK, LIGHT, ACCENT, ERASE = 0, 1, 2, 3, -1
N_TONES = 4
Primitive = tuple[int, np.ndarray]  # (tone, float [K, 2] polygon in unit coordinates)


def poly(tone: int, *points) -> Primitive:
    return tone, np.asarray(points, dtype=np.float64)


@lru_cache(maxsize=8)
def _unit_circle(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.cos(t), np.sin(t)


def ellipse(tone: int, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 24) -> Primitive:
    cos_t, sin_t = _unit_circle(n)
    x, y = rx * cos_t, ry * sin_t
    c, s = np.cos(angle), np.sin(angle)
    return tone, np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def circle(tone: int, cx: float, cy: float, r: float) -> Primitive:
    return ellipse(tone, cx, cy, r, r)


def rect(tone: int, x0: float, y0: float, x1: float, y1: float) -> Primitive:
    return poly(tone, (x0, y0), (x1, y0), (x1, y1), (x0, y1))


def line(tone: int, x0: float, y0: float, x1: float, y1: float, width: float) -> Primitive:
    """A straight stroke as a quadrilateral of the given width."""
    d = np.array([x1 - x0, y1 - y0])
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * width / 2
    return poly(tone, (x0 + n[0], y0 + n[1]), (x1 + n[0], y1 + n[1]), (x1 - n[0], y1 - n[1]), (x0 - n[0], y0 - n[1]))


def arc_band(tone: int, cx: float, cy: float, r0: float, r1: float, a0: float, a1: float, n: int = 14) -> Primitive:
    """The ring sector between radii r0 < r1 and angles a0..a1 (degrees; 0 = +x, 90 = down)."""
    t = np.radians(np.linspace(a0, a1, n))
    outer = np.stack([cx + r1 * np.cos(t), cy + r1 * np.sin(t)], 1)
    inner = np.stack([cx + r0 * np.cos(t[::-1]), cy + r0 * np.sin(t[::-1])], 1)
    return tone, np.concatenate([outer, inner])


def star_points(n: int, r_out: float, r_in: float, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    t = -np.pi / 2 + np.arange(2 * n) * np.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _wheels(xs, y: float, r: float) -> list[Primitive]:
    return [p for x in xs for p in (circle(DARK, x, y, r), circle(LIGHT, x, y, r * 0.4))]


def ball(rng) -> list[Primitive]:
    prims = [circle(BODY, 0, 0, 1.0)]
    variant = rng.integers(3)
    if variant == 0:  # beach ball: alternating sectors
        k = int(rng.integers(3, 5))
        for i in range(k):
            a = np.radians(360 / k * i)
            arc = np.linspace(a, a + np.pi / k, 8)
            prims.append(poly(ACCENT, (0, 0), *zip(0.97 * np.cos(arc), 0.97 * np.sin(arc))))
        prims.append(circle(LIGHT, 0, 0, 0.18))
    elif variant == 1:  # football: pentagon patches
        prims.append((DARK, star_points(5, 0.32, 0.32 * 0.81)[::2]))
        for i in range(5):
            a = np.radians(-90 + 72 * i + 36)
            prims.append((DARK, star_points(5, 0.2, 0.16, 0.75 * np.cos(a), 0.75 * np.sin(a))[::2]))
    else:  # tennis ball: two curved seams
        prims += [arc_band(LIGHT, -1.25, 0, 0.75, 0.88, -48, 48), arc_band(LIGHT, 1.25, 0, 0.75, 0.88, 132, 228)]
    prims.append(ellipse(LIGHT, -0.38, -0.42, 0.2, 0.12, angle=-0.7))
    return prims


def bird(rng) -> list[Primitive]:
    prims = [poly(BODY, (-0.45, 0.0), (-1.0, -0.3), (-0.95, 0.25)),  # tail
             ellipse(BODY, 0.0, 0.1, 0.62, 0.36), circle(BODY, 0.55, -0.25, 0.27),
             poly(ACCENT, (0.75, -0.34), (1.02, -0.2), (0.75, -0.12)), circle(DARK, 0.62, -0.3, 0.06)]
    variant = rng.integers(3)
    if variant == 0:  # wing raised
        prims.append(poly(DARK, (-0.3, 0.05), (0.3, 0.05), (-0.25, -0.95)))
    elif variant == 1:  # perched, wing folded, legs
        prims += [ellipse(DARK, -0.08, 0.1, 0.4, 0.17, angle=0.15),
                  line(DARK, -0.1, 0.4, -0.15, 0.8, 0.07), line(DARK, 0.15, 0.4, 0.2, 0.8, 0.07)]
    else:  # flying, both wings
        prims += [poly(BODY, (-0.3, 0.0), (0.25, 0.0), (-0.45, -0.95)),
                  poly(DARK, (-0.2, 0.2), (0.3, 0.2), (0.2, 0.95))]
    return prims


def boat(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 1:  # rowboat: deep rounded hull and oars
        hull_t = np.linspace(0, np.pi, 12)
        prims = [line(DARK, -0.9, -0.2, -0.3, 0.85, 0.09), line(DARK, 0.9, -0.2, 0.3, 0.85, 0.09),
                 (BODY, np.stack([0.95 * np.cos(hull_t), 0.15 + 0.5 * np.sin(hull_t)], 1)),
                 rect(LIGHT, -0.92, 0.12, 0.92, 0.22)]
        return prims
    prims = [poly(BODY, (-1.0, 0.1), (1.0, 0.1), (0.7, 0.6), (-0.7, 0.6)), rect(LIGHT, -0.93, 0.2, 0.93, 0.28)]
    prims += [rect(ACCENT, -0.45, -0.35, 0.35, 0.1), rect(DARK, -0.32, -0.22, -0.12, -0.05),
              rect(DARK, 0.02, -0.22, 0.22, -0.05)]
    if variant == 2:  # steamboat: funnel
        prims.append(rect(DARK, -0.1, -0.8, 0.12, -0.35))
    return prims


def sail_boat(rng) -> list[Primitive]:
    sail = LIGHT if rng.random() < 0.5 else ACCENT
    prims = [line(DARK, 0.0, -0.97, 0.0, 0.58, 0.07)]
    variant = rng.integers(3)
    if variant == 0:  # one big sail
        prims.append(poly(sail, (0.06, -0.9), (0.06, 0.45), (0.8, 0.45)))
    elif variant == 1:  # main sail and jib
        prims += [poly(sail, (0.06, -0.9), (0.06, 0.45), (0.72, 0.45)),
                  poly(sail, (-0.06, -0.72), (-0.06, 0.45), (-0.62, 0.45))]
    else:  # square sail and flag
        prims += [poly(sail, (-0.55, -0.7), (0.55, -0.7), (0.68, 0.3), (-0.68, 0.3)),
                  poly(ACCENT, (0.03, -0.97), (0.35, -0.88), (0.03, -0.8))]
    prims.append(poly(BODY, (-0.85, 0.52), (0.85, 0.52), (0.55, 0.86), (-0.55, 0.86)))
    return prims


def bottle(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 0:  # wine bottle
        return [rect(BODY, -0.3, -0.1, 0.3, 1.0), poly(BODY, (-0.3, -0.1), (-0.12, -0.45), (0.12, -0.45), (0.3, -0.1)),
                rect(BODY, -0.11, -0.9, 0.11, -0.4), rect(DARK, -0.13, -1.0, 0.13, -0.82), rect(LIGHT, -0.3, 0.25,
                                                                                                0.3, 0.6)]
    if variant == 1:  # milk bottle
        return [rect(BODY, -0.45, -0.1, 0.45, 1.0), ellipse(BODY, 0.0, -0.12, 0.45, 0.3),
                rect(BODY, -0.2, -0.7, 0.2, -0.2),
                rect(ACCENT, -0.23, -0.85, 0.23, -0.68), rect(LIGHT, -0.45, 0.3, 0.45, 0.55)]
    return [circle(BODY, 0.0, 0.45, 0.52), rect(BODY, -0.13, -0.75, 0.13, 0.05), rect(DARK, -0.16, -0.9, 0.16, -0.72),
            ellipse(LIGHT, -0.2, 0.3, 0.12, 0.2)]


def car(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 2:  # beetle
        t = np.linspace(np.pi, 2 * np.pi, 16)
        body = [(BODY, np.stack([np.cos(t), 0.35 + 0.75 * np.sin(t)], 1)), rect(BODY, -1.0, 0.3, 1.0, 0.45)]
        windows = [ellipse(LIGHT, -0.05, -0.05, 0.5, 0.22)]
    else:
        back = -0.35 if variant == 0 else -0.6  # sedan / hatchback roof line
        body = [rect(BODY, -1.0, -0.05, 1.0, 0.42),
                poly(BODY, (-0.6, -0.05), (back, -0.45), (0.3, -0.45), (0.55, -0.05))]
        windows = [poly(LIGHT, (-0.5, -0.09), (back + 0.08, -0.38), (-0.05, -0.38), (-0.05, -0.09)),
                   poly(LIGHT, (0.03, -0.09), (0.03, -0.38), (0.26, -0.38), (0.45, -0.09))]
    return body + windows + [rect(ACCENT, 0.86, 0.02, 1.0, 0.14)] + _wheels((-0.55, 0.55), 0.42, 0.23)


def chair(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 2:  # armchair, front view
        return [rect(BODY, -0.6, -0.75, 0.6, 0.15), rect(BODY, -0.8, 0.05, 0.8, 0.4),
                rect(DARK, -0.9, -0.25, -0.6, 0.4),
                rect(DARK, 0.6, -0.25, 0.9, 0.4), rect(DARK, -0.8, 0.4, -0.65, 0.7), rect(DARK, 0.65, 0.4, 0.8, 0.7)]
    prims = [rect(BODY, -0.5, -0.95, -0.36, 0.05), rect(BODY, -0.5, -0.05, 0.5, 0.1),
             rect(BODY, -0.5, 0.1, -0.38, 0.95), rect(BODY, 0.38, 0.1, 0.5, 0.95)]
    if variant == 1:  # slatted back with a cross bar
        prims += [rect(BODY, -0.5, -0.95, 0.1, -0.82), rect(BODY, -0.02, -0.95, 0.1, -0.05),
                  rect(DARK, -0.45, 0.45, 0.45, 0.53)]
    return prims


def clock(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 0:
        prims, (cx, cy, r) = [circle(BODY, 0, 0, 1.0)], (0.0, 0.0, 0.82)
    elif variant == 1:  # alarm clock: bells and feet
        prims = [circle(ACCENT, -0.55, -0.62, 0.27), circle(ACCENT, 0.55, -0.62, 0.27),
                 line(DARK, -0.45, 0.7, -0.65, 0.98, 0.1), line(DARK, 0.45, 0.7, 0.65, 0.98, 0.1), circle(BODY, 0,
                                                                                                          0.1, 0.8)]
        cx, cy, r = 0.0, 0.1, 0.64
    else:  # square mantel clock
        prims, (cx, cy, r) = [rect(BODY, -0.85, -0.85, 0.85, 0.85)], (0.0, 0.0, 0.68)
    prims.append(circle(LIGHT, cx, cy, r))
    for i in range(12):
        a = np.radians(30 * i)
        prims.append(line(DARK, cx + 0.78 * r * np.cos(a), cy + 0.78 * r * np.sin(a),
                          cx + 0.95 * r * np.cos(a), cy + 0.95 * r * np.sin(a), 0.06 + 0.04 * (i % 3 == 0)))
    for length, width in ((0.5, 0.1), (0.8, 0.06)):
        a = rng.uniform(0, 2 * np.pi)
        prims.append(line(DARK, cx, cy, cx + length * r * np.cos(a), cy + length * r * np.sin(a), width))
    prims.append(circle(ACCENT, cx, cy, 0.09))
    return prims


def cup(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 1:  # teacup on a saucer
        return [ellipse(ACCENT, -0.05, 0.5, 0.95, 0.15), arc_band(BODY, 0.48, 0.0, 0.16, 0.32, -80, 90),
                poly(BODY, (-0.7, -0.35), (0.55, -0.35), (0.4, 0.3), (0.2, 0.45), (-0.35, 0.45), (-0.55, 0.3)),
                ellipse(DARK, -0.075, -0.35, 0.62, 0.08)]
    prims = [arc_band(BODY, 0.35, 0.1, 0.22, 0.42, -90, 90), rect(BODY, -0.6, -0.45, 0.4, 0.75),
             ellipse(DARK, -0.1, -0.45, 0.5, 0.08), rect(LIGHT, -0.6, 0.1, 0.4, 0.25)]
    if variant == 2:  # steam
        for x in (-0.3, 0.1):
            ys = np.linspace(-1.0, -0.6, 5)
            pts = [(x + 0.08 * (-1) ** i, y) for i, y in enumerate(ys)]
            prims += [line(LIGHT, *pts[i], *pts[i + 1], 0.06) for i in range(4)]
    return prims


def fire_truck(rng) -> list[Primitive]:
    prims = [rect(BODY, -1.0, -0.2, 0.55, 0.45),
             poly(BODY, (0.55, -0.4), (0.85, -0.4), (1.0, -0.1), (1.0, 0.45), (0.55, 0.45)),
             rect(LIGHT, 0.62, -0.33, 0.9, -0.05), rect(LIGHT, -1.0, 0.15, 1.0, 0.22), rect(ACCENT, 0.65, -0.52, 0.8,
                                                                                            -0.4)]
    if rng.integers(2) == 0:  # ladder lying on top
        rails, rungs = ((-0.95, -0.42, 0.5, -0.42), (-0.95, -0.26, 0.5, -0.26)), np.linspace(-0.9, 0.45, 9)
        prims += [line(LIGHT, *r, 0.05) for r in rails]
        prims += [line(LIGHT, x, -0.42, x, -0.26, 0.04) for x in rungs]
    else:  # ladder raised towards the back
        a, b = np.array([0.4, -0.25]), np.array([-0.75, -0.98])
        n = np.array([0.09, -0.14])
        prims += [line(LIGHT, *(a + n), *(b + n), 0.05), line(LIGHT, *(a - n), *(b - n), 0.05)]
        prims += [line(LIGHT, *(a + t * (b - a) + n), *(a + t * (b - a) - n), 0.04) for t in np.linspace(0.1, 0.95, 7)]
    if rng.random() < 0.6:  # hose reel
        prims += [circle(DARK, -0.35, 0.1, 0.17), circle(LIGHT, -0.35, 0.1, 0.07)]
    return prims + _wheels((-0.65, -0.1, 0.7), 0.45, 0.2)


def truck(rng) -> list[Primitive]:
    variant = rng.integers(3)
    cab = [poly(BODY, (0.35, -0.25), (0.78, -0.25), (1.0, 0.05), (1.0, 0.42), (0.35, 0.42)),
           poly(LIGHT, (0.45, -0.18), (0.74, -0.18), (0.9, 0.03), (0.45, 0.03)), rect(DARK, -1.0, 0.32, 1.0, 0.42)]
    if variant == 0:  # box van
        cargo = [rect(ACCENT, -1.0, -0.7, 0.3, 0.35), rect(DARK, -0.95, -0.1, 0.25, -0.04)]
    elif variant == 1:  # tanker
        cargo = [ellipse(ACCENT, -0.35, -0.05, 0.68, 0.36)]
    else:  # flatbed with crates
        cargo = [rect(DARK, -1.0, 0.15, 0.3, 0.32), rect(ACCENT, -0.9, -0.35, -0.4, 0.15),
                 rect(ACCENT, -0.35, -0.2, 0.15, 0.15),
                 rect(ACCENT, -0.8, -0.8, -0.4, -0.35)]
    return cargo + cab + _wheels((-0.6, -0.15, 0.7), 0.45, 0.19)


def fish(rng) -> list[Primitive]:
    variant = rng.integers(3)
    rx, ry = ((0.65, 0.4), (0.5, 0.52), (0.75, 0.28))[variant]
    prims = [poly(BODY, (-rx + 0.1, 0.0), (-1.0, -0.45), (-0.85, 0.0), (-1.0, 0.45))]
    if variant == 1:  # tall angelfish: fins above and below
        prims += [poly(BODY, (-0.3, -0.3), (0.1, -0.45), (-0.45, -0.95)),
                  poly(BODY, (-0.3, 0.3), (0.1, 0.45), (-0.45, 0.95))]
    prims.append(ellipse(BODY, 0.0, 0.0, rx, ry))
    if variant == 2:  # stripes
        for x in (-0.35, 0.0, 0.3):
            half = 0.9 * ry * np.sqrt(1 - (x / rx) ** 2)  # inside the body ellipse
            prims.append(rect(DARK, x - 0.06, -half, x + 0.06, half))
    prims += [poly(DARK, (-0.1, 0.05), (0.15, 0.12), (-0.15, 0.3)), circle(LIGHT, rx - 0.25, -0.08, 0.11),
              circle(DARK, rx - 0.23, -0.08, 0.05)]
    return prims


def flower(rng) -> list[Primitive]:
    variant = rng.integers(3)
    prims: list[Primitive] = []
    if variant == 2:  # tulip
        prims += [line(DARK, 0.0, -0.1, 0.0, 1.0, 0.09), ellipse(DARK, 0.25, 0.55, 0.3, 0.1, angle=-0.6),
                  poly(BODY, (-0.45, -0.9), (-0.2, -0.55), (0.0, -0.95), (0.2, -0.55), (0.45, -0.9), (0.4, -0.25),
                       (0.2, -0.05), (-0.2, -0.05), (-0.4, -0.25))]
        return prims
    k = int(rng.integers(5, 9))
    if variant == 0:  # with stem and leaf
        cx, cy, r, pr = 0.0, -0.4, 0.32, (0.26, 0.13)
        prims += [line(DARK, 0.0, -0.3, 0.0, 1.0, 0.08), ellipse(DARK, -0.25, 0.5, 0.3, 0.1, angle=0.6)]
    else:  # seen from above
        cx, cy, r, pr = 0.0, 0.0, 0.55, (0.42, 0.2)
    for i in range(k):
        a = 2 * np.pi * i / k
        prims.append(ellipse(BODY, cx + r * np.cos(a), cy + r * np.sin(a), pr[0], pr[1], angle=a, n=16))
    prims.append(circle(ACCENT, cx, cy, r * 0.55))
    return prims


def heart(rng) -> list[Primitive]:
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    pts = np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1)
    pts = (pts - [0.0, 1.5]) / 16.5
    prims = [(BODY, pts)]
    variant = rng.integers(3)
    if variant == 1:  # pierced by an arrow
        prims = [line(DARK, -1.0, 0.55, 1.0, -0.6, 0.07), poly(DARK, (1.0, -0.6), (0.72, -0.55), (0.9, -0.35))] + prims
        prims.append(line(DARK, -1.0, 0.55, -0.6, 0.32, 0.07))
    elif variant == 2:  # double contour
        prims.append((LIGHT, pts * 0.72 + [0.0, -0.03]))
        prims.append((BODY, pts * 0.5 + [0.0, -0.05]))
    prims.append(ellipse(LIGHT, -0.45, -0.45, 0.15, 0.09, angle=-0.6))
    return prims


def house(rng) -> list[Primitive]:
    variant = rng.integers(3)
    roof = DARK if rng.random() < 0.5 else ACCENT
    if variant == 2:  # wide bungalow
        prims = [rect(BODY, -1.0, 0.0, 1.0, 0.75), poly(roof, (-1.0, 0.02), (-0.6, -0.55), (0.6, -0.55), (1.0, 0.02))]
        windows = [(-0.75, 0.15), (0.4, 0.15)]
        door = (-0.15, 0.3, 0.15, 0.75)
    else:
        prims = [rect(BODY, -0.7, -0.1, 0.7, 0.9)]
        if variant == 1:  # chimney
            prims.append(rect(DARK, 0.35, -0.8, 0.55, -0.3))
        prims.append(poly(roof, (-0.9, -0.08), (0.0, -0.85), (0.9, -0.08)))
        windows = [(-0.55, 0.08), (0.25, 0.08)]
        door = (-0.15, 0.45, 0.15, 0.9)
    for x, y in windows:
        prims += [rect(LIGHT, x, y, x + 0.32, y + 0.28), line(DARK, x + 0.16, y, x + 0.16, y + 0.28, 0.04),
                  line(DARK, x, y + 0.14, x + 0.32, y + 0.14, 0.04)]
    prims.append(rect(DARK, *door))
    return prims


def kite(rng) -> list[Primitive]:
    variant = rng.integers(3)
    if variant == 1:  # delta kite
        prims = [poly(BODY, (0.0, -0.9), (0.9, 0.25), (-0.9, 0.25)),
                 poly(ACCENT, (0.0, -0.9), (0.3, 0.25), (-0.3, 0.25)),
                 line(DARK, 0.0, -0.9, 0.0, 0.25, 0.05)]
        tail_top = (0.0, 0.25)
    else:
        prims = [poly(BODY, (0.0, -1.0), (0.6, -0.3), (0.0, 0.55), (-0.6, -0.3)),
                 poly(ACCENT, (0.0, -1.0), (0.6, -0.3), (0.0, -0.3)), poly(ACCENT, (0.0, 0.55), (-0.6, -0.3),
                                                                           (0.0, -0.3)),
                 line(DARK, 0.0, -1.0, 0.0, 0.55, 0.05), line(DARK, -0.6, -0.3, 0.6, -0.3, 0.05)]
        tail_top = (0.0, 0.55)
    if variant != 2:  # tail with bows
        xs = tail_top[0] + np.array([0.0, 0.15, -0.1, 0.12, -0.05])
        ys = np.linspace(tail_top[1], 1.0, 5)
        prims += [line(DARK, xs[i], ys[i], xs[i + 1], ys[i + 1], 0.04) for i in range(4)]
        prims += [poly(ACCENT, (x - 0.1, y - 0.06), (x + 0.1, y + 0.06), (x + 0.1, y - 0.06), (x - 0.1, y + 0.06))
                  for x, y in zip(xs[1:4], ys[1:4])]
    return prims


def moon(rng) -> list[Primitive]:
    offset = rng.uniform(0.35, 0.65)  # how thin the crescent is
    return [circle(BODY, 0.0, 0.0, 1.0), circle(ERASE, offset, -0.15, 0.9), ellipse(LIGHT, -0.7, 0.05, 0.08, 0.3)]


def star(rng) -> list[Primitive]:
    variant = rng.integers(3)
    n, inner = ((5, 0.42), (6, 0.55), (5, 0.5))[variant]
    prims = [(BODY, star_points(n, 1.0, inner, 0.0, 0.08 if n == 5 else 0.0))]
    if variant == 2:  # inner highlight star
        prims.append((LIGHT, star_points(n, 0.5, 0.25, 0.0, 0.08)))
    return prims


def tree(rng) -> list[Primitive]:
    variant = rng.integers(3)
    prims = [rect(DARK, -0.12, 0.25, 0.12, 1.0)]
    if variant == 0:  # fir
        for top, bottom, half in ((-0.15, 0.45, 0.78), (-0.55, 0.1, 0.62), (-1.0, -0.3, 0.45)):
            prims.append(poly(BODY, (-half, bottom), (0.0, top), (half, bottom)))
    elif variant == 1:  # round canopy with fruit
        prims += [circle(BODY, cx, cy, r) for cx, cy,
                  r in ((0, -0.35, 0.55), (-0.38, -0.05, 0.4), (0.38, -0.05, 0.4), (0, -0.72, 0.3))]
        prims += [circle(ACCENT, x, y, 0.08) for x, y in ((-0.3, -0.3), (0.25, -0.5), (0.3, 0.05), (-0.1, -0.05))]
    else:  # poplar
        prims.append(ellipse(BODY, 0.0, -0.3, 0.4, 0.72))
    return prims


def umbrella(rng) -> list[Primitive]:
    variant = rng.integers(3)
    ry = 0.45 if variant == 2 else 0.8
    top = np.linspace(np.pi, 2 * np.pi, 17)
    canopy = [np.stack([np.cos(top), -0.1 + ry * np.sin(top)], 1)]
    for k in range(4):  # scalloped rim, right to left
        c = 0.75 - 0.5 * k
        t = np.linspace(0, np.pi, 6)
        canopy.append(np.stack([c + 0.25 * np.cos(t), -0.1 - 0.12 * np.sin(t)], 1))
    prims = [line(DARK, 0.0, -0.1 - ry - 0.1, 0.0, 0.8 if variant != 2 else 1.0, 0.06), (BODY, np.concatenate(canopy))]
    if variant == 0:  # panels
        for x0, x1 in ((-0.75, -0.25), (0.25, 0.75)):
            prims.append(poly(ACCENT, (0.0, -0.1 - ry), (x0 + 0.03, -0.12), (x1 - 0.03, -0.12)))
    if variant != 2:  # hooked handle
        prims.append(arc_band(DARK, -0.14, 0.8, 0.08, 0.16, 0, 180, n=10))
    return prims


def clutter(rng) -> list[Primitive]:
    """A small non-class bit: a blob, a stroke, a scribble or a group of specks."""
    kind = rng.integers(4)
    if kind == 0:
        return [ellipse(BODY, 0, 0, 1.0, rng.uniform(0.3, 1.0), angle=rng.uniform(0, np.pi), n=12)]
    if kind == 1:
        return [line(BODY, -1.0, rng.uniform(-1, 1), 1.0, rng.uniform(-1, 1), rng.uniform(0.1, 0.25))]
    if kind == 2:
        pts = np.stack([np.linspace(-1, 1, 6), rng.uniform(-0.6, 0.6, 6)], 1)
        return [line(BODY, *pts[i], *pts[i + 1], 0.15) for i in range(5)]
    return [circle(BODY, *rng.uniform(-0.8, 0.8, 2), 0.2) for _ in range(int(rng.integers(3, 7)))]


SHAPES: dict[str, Callable] = {
    "ball": ball, "bird": bird, "boat": boat, "bottle": bottle, "car": car, "chair": chair, "clock": clock,
    "cup": cup, "fire truck": fire_truck, "fish": fish, "flower": flower, "heart": heart, "house": house,
    "kite": kite, "moon": moon, "sail boat": sail_boat, "star": star, "tree": tree, "truck": truck,
    "umbrella": umbrella,
}
