"""The toy world: object classes, scene sampling, and the renderer of toy "photos".

A scene is a scene type (street, park, sea, kitchen, night, room) and 1-5 objects drawn from that
type's class weights, so some pairs are frequent (car + house) and others rare (fish + car).
Objects are placed with overlap (later ones occlude earlier ones), in any colour (colour never
identifies a class), several sizes, rotations, flips, stretches and shape variants. The renderer
adds a textured scene background, small clutter that is not a class, directional light, a colour
cast, sensor noise and sometimes blur. Everything is drawn from one numpy ``Generator`` so an image
is a pure function of its seed: ``default_rng([seed, split_id, index])``.

Geometry of a scene is kept in units of the image side (0..1) so a scene can be rendered at any
size, or only captioned and never rendered (the caption-only corpus).
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.toy import shapes
from bench.toy.shapes import ERASE, N_TONES, Primitive

CLASSES: tuple[str, ...] = tuple(sorted(shapes.SHAPES))  # 20 classes, alphabetical = category ids 1..20
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
SUPERCATEGORY = {
    "ball": "toy", "bird": "animal", "boat": "vehicle", "bottle": "kitchen", "car": "vehicle", "chair": "furniture",
    "clock": "furniture", "cup": "kitchen", "fire truck": "vehicle", "fish": "animal", "flower": "plant",
    "heart": "symbol", "house": "building", "kite": "toy", "moon": "sky", "sail boat": "vehicle", "star": "sky",
    "tree": "plant", "truck": "vehicle", "umbrella": "accessory",
}

# Scene types and the relative frequency of each class in them; classes not listed get RARE weight.
SCENE_WEIGHTS: dict[str, dict[str, float]] = {
    "street": {"car": 5, "truck": 3, "fire truck": 1.5, "house": 4, "tree": 3, "bird": 1.5, "umbrella": 1.5, "clock": 1,
               "ball": 1},
    "park": {"tree": 5, "flower": 4, "bird": 3, "ball": 3, "kite": 3, "umbrella": 1.5, "chair": 1.5, "heart": 1,
             "house": 1},
    "sea": {"boat": 5, "sail boat": 4, "fish": 4, "bird": 3, "umbrella": 1.5, "ball": 1.5, "moon": 1, "star": 1,
            "house": 0.5},
    "kitchen": {"cup": 5, "bottle": 5, "clock": 3, "chair": 3, "fish": 1.5, "flower": 2, "heart": 1},
    "night": {"moon": 5, "star": 5, "house": 2, "tree": 2, "bird": 1, "kite": 1, "fire truck": 1, "heart": 1},
    "room": {"chair": 4, "clock": 3, "ball": 3, "heart": 3, "star": 2, "cup": 2, "bottle": 2, "flower": 2, "kite": 1,
             "car": 1, "boat": 1, "sail boat": 1, "umbrella": 1, "fish": 1},
}
SCENES: tuple[str, ...] = tuple(SCENE_WEIGHTS)
RARE = 0.05
N_OBJECTS_P = np.array([0.22, 0.3, 0.24, 0.15, 0.09])  # P(1..5 objects)
REPEAT_DAMPING = 0.35  # a class already in the scene is this much less likely to be drawn again

# Where a class may stand (vertical range of its centre) and how far it may rotate (degrees).
SKY, GROUND, ANYWHERE = (0.0, 0.6), (0.35, 1.0), (0.0, 1.0)
VERTICAL = {"moon": SKY, "star": SKY, "kite": SKY, "bird": SKY, "car": GROUND, "truck": GROUND, "fire truck": GROUND,
            "house": GROUND, "tree": GROUND, "chair": GROUND, "boat": GROUND, "sail boat": GROUND}
MAX_ROTATION = {"ball": 180, "star": 180, "flower": 60, "clock": 25, "heart": 35, "moon": 60, "fish": 35, "bird": 30,
                "kite": 40, "cup": 15, "bottle": 20, "umbrella": 25}
DEFAULT_ROTATION = 12
SUPERSAMPLE = 2  # polygons are drawn at 2x and box-filtered down: cheap anti-aliasing
MIN_VISIBLE = 0.3  # an object less visible than this after occlusion is removed from the labels


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene; geometry in units of the image side."""

    label: int
    cx: float
    cy: float
    scale: float  # half the side of the object's unit box
    angle: float  # degrees, counter-clockwise
    flip: bool
    stretch: float  # x scale relative to y
    colour: tuple[float, float, float]  # body colour, RGB in [0, 1]
    accent: tuple[float, float, float]
    prims: tuple[Primitive, ...] = dataclasses.field(repr=False, compare=False, default=())


@dataclass(frozen=True)
class Scene:
    """A scene type and its objects, back to front."""

    kind: str
    objects: tuple[ObjectSpec, ...]

    def labels(self) -> list[int]:
        return sorted({o.label for o in self.objects})


@dataclass(frozen=True)
class Rendered:
    """A rendered scene: the image, the objects still visible, their pixel boxes [x, y, w, h] and areas."""

    image: Image.Image
    scene: Scene
    boxes: tuple[tuple[int, int, int, int], ...]
    areas: tuple[int, ...]


def pick(rng: np.random.Generator, options: tuple | list):
    """A uniformly random element (10x faster than ``rng.choice``, which builds an array each call)."""
    return options[int(rng.integers(len(options)))]


def weighted_index(rng: np.random.Generator, weights) -> int:
    """An index drawn with probability proportional to ``weights``."""
    cumulative = np.cumsum(weights)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """Any hue; one in seven is a grey, white or black."""
    if rng.random() < 0.14:
        v = pick(rng, (0.1, rng.uniform(0.3, 0.7), 0.95))
        return (v, v, v)
    return colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.35, 1.0))


def sample_objects(kind: str, rng: np.random.Generator) -> list[int]:
    """Class indices of a scene's objects (repeats allowed, damped)."""
    weights = np.full(len(CLASSES), RARE)
    for name, w in SCENE_WEIGHTS[kind].items():
        weights[CLASS_INDEX[name]] = w
    labels = []
    for _ in range(weighted_index(rng, N_OBJECTS_P) + 1):
        c = weighted_index(rng, weights)
        weights[c] *= REPEAT_DAMPING
        labels.append(c)
    return labels


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection of two square boxes (cx, cy, half) over the smaller box's area."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0] - a[2], b[0] - b[2])
    h = min(a[1] + a[2], b[1] + b[2]) - max(a[1] - a[2], b[1] - b[2])
    return max(w, 0) * max(h, 0) / (4 * min(a[2], b[2]) ** 2)


def place(label: int, scale: float, taken: list[tuple], rng: np.random.Generator) -> tuple[float, float]:
    """A centre for the object: in its vertical band, overlapping the others as little as 8 tries find."""
    lo, hi = VERTICAL.get(CLASSES[label], ANYWHERE)
    best, best_overlap = (0.5, 0.5), np.inf
    for _ in range(8):
        cx = rng.uniform(scale * 0.5, 1 - scale * 0.5)
        cy = rng.uniform(max(lo, scale * 0.5), max(min(hi, 1 - scale * 0.5), max(lo, scale * 0.5) + 1e-3))
        worst = max((_overlap((cx, cy, scale), t) for t in taken), default=0.0)
        if worst < best_overlap:
            best, best_overlap = (cx, cy), worst
        if worst < 0.25:
            break
    return best


def make_object(label: int, cx: float, cy: float, scale: float, rng: np.random.Generator,
                max_rotation: float) -> ObjectSpec:
    """An object with random pose, colours and shape variant."""
    return ObjectSpec(label=label, cx=cx, cy=cy, scale=scale, angle=float(rng.uniform(-max_rotation, max_rotation)),
                      flip=bool(rng.random() < 0.5), stretch=float(rng.uniform(0.85, 1.18)),
                      colour=random_colour(rng), accent=random_colour(rng),
                      prims=tuple(shapes.SHAPES[CLASSES[label]](rng)))


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene: its type and its objects, back to front, with pose and colour."""
    kind = SCENES[rng.integers(len(SCENES))]
    return compose_scene(kind, sample_objects(kind, rng), rng)


def compose_scene(kind: str, labels: list[int], rng: np.random.Generator) -> Scene:
    """A scene of the given type with these objects (1-5), posed, placed and coloured at random."""
    lo, hi = ((0.25, 0.42), (0.2, 0.36), (0.16, 0.3), (0.13, 0.26), (0.13, 0.26))[len(labels) - 1]
    objects, taken = [], []
    for label in labels:
        scale = float(rng.uniform(lo, hi))
        cx, cy = place(label, scale, taken, rng)
        taken.append((cx, cy, scale))
        objects.append(make_object(label, cx, cy, scale, rng, MAX_ROTATION.get(CLASSES[label], DEFAULT_ROTATION)))
    return Scene(kind=kind, objects=tuple(objects))


def sample_clutter(rng: np.random.Generator) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """0-8 small distractor pieces (blobs, strokes, scribbles, specks): (RGB, polygons in image units)."""
    pieces = []
    for _ in range(rng.integers(0, 9)):
        cx, cy = rng.uniform(0.03, 0.97, 2)
        half, angle = rng.uniform(0.02, 0.06), rng.uniform(-180, 180)
        polygons = [pts for _, pts in transform(shapes.clutter(rng), cx, cy, half, angle, False, 1.0)]
        pieces.append((np.array(random_colour(rng), dtype=np.float32), polygons))
    return pieces


# ---------------------------------------------------------------------------------------------
# Rasterising


def transform(prims, cx: float, cy: float, scale: float, angle: float, flip: bool, stretch: float):
    """Unit-box polygons to pixel coordinates (``cx``, ``cy``, ``scale`` in pixels)."""
    a = np.radians(angle)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # counter-clockwise on screen (y down)
    mul = np.array([(-1.0 if flip else 1.0) * stretch, 1.0]) * scale
    return [(tone, (pts * mul) @ rot.T + [cx, cy]) for tone, pts in prims]


def rasterise(pixel_prims, size: int, ss: int = SUPERSAMPLE):
    """Anti-aliased coverage of pixel-space polygons, clipped to a ``size`` x ``size`` image.

    Returns ``(x0, y0, cover, alpha)``: ``cover`` maps each tone present to its float32 [h, w]
    coverage in [0, 1], ``alpha`` is their sum; None when the object lies outside the image.
    """
    allpts = np.concatenate([p for _, p in pixel_prims])
    x0, y0 = (max(int(np.floor(v)), 0) for v in allpts.min(0))
    x1, y1 = (min(int(np.ceil(v)) + 1, size) for v in allpts.max(0))
    if x1 <= x0 or y1 <= y0:
        return None
    canvas = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    draw = ImageDraw.Draw(canvas)
    for tone, pts in pixel_prims:
        draw.polygon(((pts - [x0, y0]) * ss).ravel().tolist(), fill=tone + 1 if tone != ERASE else 0)
    index = np.asarray(canvas)
    norm = np.float32(1 / ss**2)

    def box_filter(mask: np.ndarray) -> np.ndarray:  # fraction of the ss x ss samples set, per pixel
        mask = mask.view(np.uint8)
        count = sum(mask[i::ss, j::ss] for i in range(ss) for j in range(ss))  # strided adds: 8x a reshape-sum
        return count.astype(np.float32) * norm

    present = np.flatnonzero(np.bincount(index.ravel(), minlength=N_TONES + 1)[1:])
    cover = {int(t): box_filter(index == t + 1) for t in present}
    return x0, y0, cover, box_filter(index > 0)


def tone_colours(spec: ObjectSpec) -> np.ndarray:
    """RGB of the four tones, float32 [N_TONES, 3]: body, dark shade, light tint, accent."""
    body = np.array(spec.colour)
    return np.stack([body, body * 0.45, body + (1 - body) * 0.55, np.array(spec.accent)]).astype(np.float32)


def paint(canvas: np.ndarray, spec: ObjectSpec, light: tuple[float, float], shade: float) -> tuple | None:
    """Composite one object onto ``canvas`` float32 [3, H, W] in place, shaded along ``light`` (unit 2-vector).

    Returns ``(x0, y0, alpha)`` of the painted region, or None when nothing was in the image.
    Float32 elementwise arithmetic only (no einsum, no vectorised sin), so pixels are the same on any CPU.
    """
    size = canvas.shape[1]
    raster = rasterise(transform(spec.prims, spec.cx * size, spec.cy * size, spec.scale * size, spec.angle, spec.flip,
                                 spec.stretch), size)
    if raster is None:
        return None
    x0, y0, cover, alpha = raster
    h, w = alpha.shape
    tones = tone_colours(spec)[..., None, None]
    colour = np.zeros((3, h, w), dtype=np.float32)
    for t, c in cover.items():
        colour += c * tones[t]
    # a linear ramp across the object gives it a lit side and a shadow side
    k = float(shade) / (spec.scale * size)
    xs = (np.arange(x0, x0 + w, dtype=np.float32) - np.float32(spec.cx * size)) * np.float32(k * light[0])
    ys = (np.arange(y0, y0 + h, dtype=np.float32) - np.float32(spec.cy * size)) * np.float32(k * light[1])
    region = canvas[:, y0:y0 + h, x0:x0 + w]
    region *= np.float32(1) - alpha
    region += colour * (np.float32(1) + xs[None, :] + ys[:, None])
    return x0, y0, alpha


def paint_clutter(canvas: np.ndarray, pieces: list, owner: np.ndarray | None = None) -> None:
    """Paint clutter pieces onto ``canvas`` [3, H, W] in place, in one aliased pass (they are specks).

    Where ``owner`` is given, the pixels they cover are marked as showing no object (-1).
    """
    if not pieces:
        return
    size = canvas.shape[1]
    index = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(index)
    for k, (_, polygons) in enumerate(pieces):
        for pts in polygons:
            draw.polygon((pts * size).ravel().tolist(), fill=k + 1)
    index = np.asarray(index)
    lut = np.concatenate([np.zeros((1, 3), np.float32), np.stack([colour for colour, _ in pieces])]).T  # [3, 1 + K]
    ys, xs = np.nonzero(index)
    canvas[:, ys, xs] = lut[:, index[ys, xs]]
    if owner is not None:
        owner[ys, xs] = -1


def _contrast_colour(spec: ObjectSpec, background: np.ndarray, rng: np.random.Generator) -> ObjectSpec:
    """Redraw the body colour (up to 6 times) while it is too close to the background under the object."""
    size = background.shape[1]
    r = max(int(spec.scale * size * 0.7), 1)
    x, y = int(spec.cx * size), int(spec.cy * size)
    under = background[:, max(y - r, 0):y + r, max(x - r, 0):x + r].reshape(3, -1).mean(1, dtype=np.float64)
    for _ in range(6):
        if np.linalg.norm(np.array(spec.colour) - under) > 0.3:
            break
        spec = dataclasses.replace(spec, colour=random_colour(rng))
    return spec


# ---------------------------------------------------------------------------------------------
# Backgrounds and lighting: float32, channel-first [3, H, W] (a trailing axis of 3 makes numpy's
# broadcasting ~15x slower). Elementwise float32 arithmetic is exact IEEE, so the same on every CPU.


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) in units of the image side, float32 [size, size]."""
    return tuple((np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)) / np.float32(size))


def _sin(x: np.ndarray) -> np.ndarray:
    """float32 sine computed in float64: vectorised float32 sin differs in the last bit between CPUs."""
    return np.sin(x.astype(np.float64)).astype(np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An HSV colour as a float32 RGB column [3, 1, 1] that broadcasts over a [3, H, W] image."""
    rgb = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return np.array(rgb, dtype=np.float32).reshape(3, 1, 1)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [-1, 1]: a ``cells`` x ``cells`` random grid, bilinearly upsampled, float32."""
    small = Image.fromarray(rng.random((cells, cells), dtype=np.float32), mode="F")
    return np.asarray(small.resize((size, size), Image.BILINEAR)) * np.float32(2) - np.float32(1)


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random texture float32 [size, size] in about [-1, 1]: plain, stripes, tiles, noise or speckles."""
    yy, xx = _grid(size)
    kind = rng.integers(5)
    if kind == 0:
        return np.zeros((size, size), np.float32)
    if kind == 1:
        a, f = rng.uniform(0, np.pi), rng.uniform(3, 14)
        return _sin(xx * float(2 * np.pi * f * np.cos(a)) + yy * float(2 * np.pi * f * np.sin(a)))
    if kind == 2:
        f, w = int(rng.integers(3, 10)), rng.uniform(0.06, 0.18)
        return np.where(((xx * f) % 1 < w) | ((yy * f) % 1 < w), np.float32(-1), np.float32(0.3))
    if kind == 3:
        return _smooth_noise(rng, size, int(rng.integers(4, 20)))
    return np.where(rng.random((size, size), dtype=np.float32) < 0.03, np.float32(1), np.float32(0))


def _vertical(top: np.ndarray, bottom: np.ndarray, size: int) -> np.ndarray:
    t = _grid(size)[0]
    return top * (1 - t) + bottom * t


def _outdoor(kind: str, rng: np.random.Generator, size: int, horizon: float) -> np.ndarray:
    """Street (road, skyline), park (grass) or sea (waves, maybe a beach) under a sky."""
    yy, xx = _grid(size)
    below = yy > horizon
    sky_hue = rng.uniform(0.5, 0.65) if rng.random() < 0.8 else rng.uniform(0.0, 0.15)
    sky = _vertical(_hsv(sky_hue, rng.uniform(0.2, 0.6), rng.uniform(0.7, 1.0)),
                    _hsv(sky_hue, rng.uniform(0.05, 0.3), rng.uniform(0.8, 1.0)), size)
    if kind == "street":
        lane = (np.abs(yy - (horizon + 1) / 2) < 0.015) & ((xx * 6) % 1 < 0.5)
        ground = np.where(lane, _hsv(0.15, 0.3, 0.95), _hsv(0, 0, rng.uniform(0.3, 0.6)))
        canvas = np.where(below, ground, sky)
        for _ in range(rng.integers(2, 7)):  # skyline blocks
            x0, w, h = rng.uniform(0, 0.9), rng.uniform(0.08, 0.3), rng.uniform(0.1, 0.35)
            block = (xx > x0) & (xx < x0 + w) & (yy > horizon - h) & ~below
            canvas[:, block] = _hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.4, 0.85))[:, 0]
        return canvas
    if kind == "park":
        grass = _hsv(rng.uniform(0.2, 0.42), rng.uniform(0.4, 0.8), rng.uniform(0.35, 0.75))
        return np.where(below, grass + np.float32(0.12) * _smooth_noise(rng, size, 24), sky)
    water = _hsv(rng.uniform(0.45, 0.62), rng.uniform(0.4, 0.9), rng.uniform(0.35, 0.8))
    wobble = np.float32(0.8 * np.pi) * _sin(xx * float(6 * np.pi))
    waves = np.float32(0.08) * _sin(yy * float(2 * np.pi * rng.uniform(8, 20)) + wobble)
    canvas = np.where(below, water + waves, sky)
    if rng.random() < 0.4:
        canvas[:, yy > rng.uniform(0.8, 0.92)] = _hsv(rng.uniform(0.1, 0.14), rng.uniform(0.2, 0.5), 0.9)[:, 0]
    return canvas


def background(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background float32 [3, size, size] for a scene type (1 in 7 is a generic one)."""
    yy, xx = _grid(size)
    if rng.random() < 0.14:
        kind = "generic"
    amp = rng.uniform(0.03, 0.15)
    horizon = rng.uniform(0.35, 0.6)
    if kind in ("street", "park", "sea"):
        canvas = _outdoor(kind, rng, size, horizon)
    elif kind == "kitchen":
        wall = _hsv(rng.random(), rng.uniform(0.05, 0.35), rng.uniform(0.7, 1.0))
        counter = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0, 0.5), rng.uniform(0.3, 0.9))
        f = int(rng.integers(4, 9))
        grout = np.where(((xx * f) % 1 < 0.07) | ((yy * f) % 1 < 0.07), np.float32(0.85), np.float32(1))
        canvas = np.where(yy > rng.uniform(0.6, 0.8), counter, wall) * grout
    elif kind == "night":
        canvas = _vertical(_hsv(rng.uniform(0.6, 0.75), 0.7, rng.uniform(0.05, 0.2)),
                           _hsv(rng.uniform(0.65, 0.85), 0.5, rng.uniform(0.2, 0.4)), size)
        canvas = np.where(rng.random((size, size), dtype=np.float32) < 0.01, np.float32(0.9), canvas)
        if rng.random() < 0.5:  # dark hills
            ridge = _sin(xx * float(2 * np.pi * rng.uniform(1, 3)) + float(2 * np.pi * rng.random()))
            hill = yy > horizon + 0.3 + np.float32(0.08) * ridge
            canvas[:, hill] = _hsv(rng.uniform(0.2, 0.7), 0.4, 0.12)[:, 0]
    elif kind == "room":
        wall = _hsv(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.5, 1.0))
        floor = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7))
        canvas = np.where(yy > rng.uniform(0.65, 0.85), floor + np.float32(0.1) * _sin(xx * float(20 * np.pi)), wall)
    else:
        canvas = _hsv(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.2, 1.0)) + np.zeros((size, size), np.float32)
        amp = rng.uniform(0.1, 0.3)
    canvas = np.clip(canvas * (1 + amp * texture(rng, size)), 0, 1)
    return canvas


def finish(canvas: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Camera effects on the composite [3, H, W]: exposure, colour cast, light fall-off, noise, sometimes blur."""
    yy, xx = _grid(canvas.shape[1])
    a = rng.uniform(0, 2 * np.pi)
    falloff = 1 + rng.uniform(0, 0.35) * ((xx - 0.5) * float(np.cos(a)) + (yy - 0.5) * float(np.sin(a)))
    gain = (rng.uniform(0.75, 1.15) * (1 + rng.normal(0, 0.05, (3, 1, 1)))).astype(np.float32)
    image = canvas * gain * falloff
    # uniform noise (sigma up to 0.03): as good as Gaussian here and six times cheaper to draw
    sigma = np.float32(rng.uniform(0.0, 0.03) * 12**0.5)
    image += sigma * (rng.random(image.shape, dtype=np.float32) - np.float32(0.5))
    pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), mode="RGB")
    if rng.random() < 0.25:
        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.9)))
    return pil


def render_scene(scene: Scene, rng: np.random.Generator, size: int = 128) -> Rendered:
    """Render a scene as a toy photo; objects hidden below :data:`MIN_VISIBLE` are dropped from it.

    ``rng`` continues the generator that sampled the scene. The returned scene may differ from the
    input: body colours too close to the background are redrawn, and hidden objects are gone.
    """
    canvas = background(scene.kind, rng, size)
    objects = [_contrast_colour(o, canvas, rng) for o in scene.objects]
    clutter = sample_clutter(rng)
    behind, in_front = clutter[: len(clutter) // 2], clutter[len(clutter) // 2:]
    a = rng.uniform(0, 2 * np.pi)
    light, shade = (float(np.cos(a)), float(np.sin(a))), rng.uniform(0.1, 0.4)
    paint_clutter(canvas, behind)
    owner = np.full((size, size), -1, dtype=np.int16)  # which object each pixel shows
    drawn = np.zeros(len(objects), dtype=np.int64)
    for i, spec in enumerate(objects):
        painted = paint(canvas, spec, light, shade)
        if painted is not None:
            x0, y0, alpha = painted
            solid = alpha > 0.5
            owner[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]][solid] = i
            drawn[i] = solid.sum()
    paint_clutter(canvas, in_front, owner)
    visible = np.bincount(owner.ravel() + 1, minlength=len(objects) + 1)[1:]
    keep = [i for i in range(len(objects)) if visible[i] >= 4 and visible[i] >= MIN_VISIBLE * drawn[i]]
    if not keep:  # never an image without a label: the most visible object stays
        keep = [int(np.argmax(visible))]
    boxes = []
    for i in keep:
        ys, xs = np.nonzero(owner == i)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)))
    kept = Scene(kind=scene.kind, objects=tuple(objects[i] for i in keep))
    return Rendered(image=finish(canvas, rng), scene=kept, boxes=tuple(boxes),
                    areas=tuple(int(visible[i]) for i in keep))


def generate_example(seed: int, split_id: int, index: int, size: int = 128) -> Rendered:
    """The toy photo number ``index`` of a split's seed stream: ``default_rng([seed, split_id, index])``."""
    rng = np.random.default_rng([seed, split_id, index])
    return render_scene(sample_scene(rng), rng, size)
