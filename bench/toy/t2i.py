"""The toy text-to-image renderer: the toy world's stand-in for Stable Diffusion.

It reads the class words of a caption (synonyms, plurals, counts such as "two" or "a couple of",
and a colour word just before the noun) and draws those objects with the toy world's shapes, but
in another style than the toy photos, so a synthetic-to-real domain gap exists as between
generated images and COCO photos: flat pastel fills with dark ink outlines on cream paper with
fibre grain, objects upright, evenly laid out on a grid and larger, no clutter, no occlusion, no
camera noise or lighting. Unknown words are ignored; a caption without a class word gives a
blank sheet. The image is a pure function of ``(caption, seed, size)``.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from bench.data.captions import CaptionParser, normalise
from bench.toy import shapes
from bench.toy.captions import class_synonyms
from bench.toy.world import CLASSES, pick, rasterise, transform

COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "the": 1, "two": 2, "couple": 2, "pair": 2, "both": 2, "three": 3,
               "four": 4, "five": 5, "six": 6, "several": 3, "some": 3, "few": 3, "many": 4, "group": 3,
               **{str(k): k for k in range(1, 10)}}
COLOUR_HUES = {"red": 0.0, "orange": 0.08, "yellow": 0.15, "green": 0.33, "blue": 0.6, "purple": 0.76, "pink": 0.9,
               "brown": 0.07}
STOP_WORDS = {"and", "with", "next", "near", "beside", "to", "in", "on", "at", "by"}  # a count never crosses these
STYLE_VERSION = 1  # bump when the drawing changes: generated-image caches key on it (bench/generation/generators.py)
MAX_OBJECTS = 6
INK = np.array([0.18, 0.16, 0.2], dtype=np.float32)


@lru_cache(maxsize=1)
def _phrases() -> tuple[tuple[str, int, bool], ...]:
    """(normalised phrase, class, is plural) for every surface form: the caption parser's phrase table
    for the toy synonyms (longest first), each phrase flagged plural unless it is a synonym as written
    or a synonym with its spaces removed."""
    singular = set()
    for synonyms in class_synonyms():
        for synonym in synonyms:
            base = normalise(synonym).strip()
            singular.add(base)
            singular.add(base.replace(" ", ""))
    parser = CaptionParser.from_file("toy", list(CLASSES))
    return tuple((form, label, form not in singular) for form, label in parser.phrases)


def parse_objects(caption: str) -> list[tuple[int, int, str | None]]:
    """(class index, count, colour word or None) for each class mention of a caption, in text order.

    Compound names are matched first and consumed ("fire truck" never also counts as "truck"). The
    count is the nearest count word among the three words before the noun ("two red cars"), else 2
    for a plural noun and 1 for a singular one.
    """
    words = normalise(caption).split()
    taken = [False] * len(words)
    found = []
    for phrase, label, is_plural in _phrases():
        target = phrase.split()
        for start in range(len(words) - len(target) + 1):
            end = start + len(target)
            if words[start:end] != target or any(taken[start:end]):
                continue
            taken[start:end] = [True] * len(target)
            count, colour = (2 if is_plural else 1), None
            for back in range(start - 1, max(start - 4, -1), -1):
                word = words[back]
                if taken[back] or word in STOP_WORDS:
                    break
                if word in COLOUR_HUES and colour is None:
                    colour = word
                if word in COUNT_WORDS:
                    count = COUNT_WORDS[word] if not (is_plural and COUNT_WORDS[word] == 1) else 2
                    break
            found.append((start, label, count, colour))
    return [(label, count, colour) for _, label, count, colour in sorted(found)]


def _seed_of(caption: str, seed: int) -> list[int]:
    """A stable integer seed for (caption, seed): Python's ``hash`` of a string changes per process."""
    digest = hashlib.sha256(caption.encode("utf-8")).digest()
    return [int.from_bytes(digest[:8], "little"), int(seed)]


def _pastel(rng: np.random.Generator, hue: float | None = None) -> tuple[float, float, float]:
    hue = rng.random() if hue is None else (hue + rng.uniform(-0.03, 0.03)) % 1.0
    return colorsys.hsv_to_rgb(hue, rng.uniform(0.25, 0.5), rng.uniform(0.85, 1.0))


def _paper(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cream paper float32 [3, size, size]: warm base, horizontal fibres, fine grain."""
    base = np.array(colorsys.hsv_to_rgb(rng.uniform(0.08, 0.14), rng.uniform(0.05, 0.18), rng.uniform(0.9, 0.98)),
                    dtype=np.float32).reshape(3, 1, 1)
    fibres = Image.fromarray(rng.random((size, max(size // 8, 1)), dtype=np.float32), mode="F")
    fibres = np.asarray(fibres.resize((size, size), Image.BILINEAR))  # each row stretched 8x: streaks along x
    grain = rng.random((size, size), dtype=np.float32)
    return base * (np.float32(0.97) + np.float32(0.04) * fibres + np.float32(0.02) * grain)


def _outline(alpha: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of the silhouette's edge, inside it: the ink line."""
    h, w = alpha.shape
    solid = np.pad(alpha > 0.5, width)
    # the square window's AND is separable: across the row's shifts, then the column's (the same pixels as
    # ANDing every (dy, dx) shift, in 2(2w+1) instead of (2w+1)^2 array operations)
    rows = np.logical_and.reduce([solid[:, width + dx:width + dx + w] for dx in range(-width, width + 1)])
    inner = np.logical_and.reduce([rows[width + dy:width + dy + h] for dy in range(-width, width + 1)])
    return solid[width:width + h, width:width + w] & ~inner


def _draw(canvas: np.ndarray, label: int, cx: float, cy: float, scale: float, colour_word: str | None,
          rng: np.random.Generator) -> None:
    """One object, flat pastel with ink outlines, onto ``canvas`` [3, S, S] in place."""
    size = canvas.shape[1]
    prims = shapes.SHAPES[CLASSES[label]](rng)
    pixel_prims = transform(prims, cx, cy, scale, float(rng.uniform(-5, 5)), bool(rng.random() < 0.5), 1.0)
    raster = rasterise(pixel_prims, size, ss=3)
    if raster is None:
        return
    x0, y0, cover, alpha = raster
    body = _pastel(rng, COLOUR_HUES.get(colour_word))
    tones = np.array([body, [c * 0.75 for c in body], [1 - (1 - c) * 0.4 for c in body], _pastel(rng)],
                     dtype=np.float32)[..., None, None]
    colour = np.zeros((3, *alpha.shape), dtype=np.float32)
    for t, c in cover.items():
        colour += c * tones[t]
    region = canvas[:, y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
    region *= np.float32(1) - alpha
    region += colour
    ink = _outline(alpha, max(1, size // 64))
    region[:, ink] = INK[:, None]


def render_caption(caption: str, seed: int, size: int = 128) -> Image.Image:
    """A toy "generated" image for a caption: its named objects in the flat pastel line-art style."""
    rng = np.random.default_rng(_seed_of(caption, seed))
    objects = [(label, colour) for label, count, colour in parse_objects(caption) for _ in range(count)][:MAX_OBJECTS]
    order = rng.permutation(len(objects))
    canvas = _paper(rng, size)
    cols = max(1, math.ceil(math.sqrt(len(objects))))
    rows = max(1, math.ceil(len(objects) / cols))
    cell_w, cell_h = size / cols, size / rows
    for slot, k in enumerate(order):
        label, colour = objects[k]
        cx = (slot % cols + 0.5 + rng.uniform(-0.06, 0.06)) * cell_w
        cy = (slot // cols + 0.5 + rng.uniform(-0.06, 0.06)) * cell_h
        _draw(canvas, label, cx, cy, 0.4 * min(cell_w, cell_h), colour, rng)
    pixels = (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), mode="RGB")
    return image.filter(ImageFilter.GaussianBlur(pick(rng, (0.5, 0.7))))  # soft, painted look


def render_caption_as_photo(caption: str, seed: int, size: int = 128) -> Image.Image:
    """The *oracle* generator: the caption's objects rendered by the toy photo renderer itself.

    No synthetic-to-real gap by construction (same style, backgrounds, clutter and noise as the toy
    photos), so comparing T2I-PAL trained on these with T2I-PAL trained on :func:`render_caption`
    images measures what the domain gap costs. Counts are capped at 2 per class and 5 objects; the
    scene type is the one whose co-occurrence weights favour the named classes most.
    """
    from bench.toy.world import SCENE_WEIGHTS, SCENES, compose_scene, render_scene

    rng = np.random.default_rng(_seed_of(caption, seed) + [1])
    labels = [label for label, count, _ in parse_objects(caption) for _ in range(min(count, 2))][:5]
    if not labels:
        labels = [int(rng.integers(len(CLASSES)))]  # the photo renderer needs an object; rare (no class word)
    fit = [sum(SCENE_WEIGHTS[k].get(CLASSES[label], 0.0) for label in labels) for k in SCENES]
    kind = SCENES[int(np.argmax(fit))]
    return render_scene(compose_scene(kind, labels, rng), rng, size).image
