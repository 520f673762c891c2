"""Captions of toy scenes, in the manner of MS-COCO's human captions.

A caption names some of the scene's objects (the salient ones more often; real captions leave
objects out), each through a synonym from ``bench/data/synonyms/toy.json`` with a count ("two
cars", "a couple of automobiles", "several stars"), sometimes a colour, size or position, inside
one of many paraphrase templates, with distractor words that name no class. Every class word in a
caption is a true object of the scene: nothing here may write a class word for an absent object,
and no template or filler contains one (the tests parse every caption to check).
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

from bench.data.captions import SYNONYM_DIR, inflect_engine, load_synonyms, plural
from bench.toy.world import CLASSES, ObjectSpec, Scene, pick, weighted_index

SYNONYM_FILE = SYNONYM_DIR / "toy.json"

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
PAIR_WORDS = ("a couple of", "a pair of", "two")
FEW_WORDS = ("several", "some", "a few", "a group of")
PLACES = {
    "street": ("on a street", "in the city", "by the road", "downtown"),
    "park": ("in a park", "on the grass", "in a garden", "outdoors on a lawn"),
    "sea": ("at sea", "on the water", "by the shore", "in a harbour"),
    "kitchen": ("in a kitchen", "on a counter", "on a kitchen table"),
    "night": ("at night", "under a dark sky", "in the evening"),
    "room": ("in a room", "indoors", "in a living room", "on the floor"),
}
FILLERS = ("with a few scribbles around", "and some specks of paint", "seen from a distance", "in soft light",
           "slightly blurry", "with some clutter around", "on a textured background", "in a cheerful style",
           "with a busy background", "in bright colours")
SCENE_ADJECTIVES = ("colourful", "busy", "simple", "quiet", "cluttered", "bright", "cheerful", "small")
# (minimum number of named groups, template): {all} lists every named group, {0} is the first, {rest} the others
TEMPLATES = (
    (1, "a photo of {all}."), (1, "{all} {place}."), (1, "a picture showing {all}."), (1, "there {be} {all} {place}."),
    (1, "an image of {all}, {filler}."), (1, "a {adj} scene with {all}."), (1, "{all}."), (1, "close-up of {all}."),
    (1, "in this picture we can see {all}."), (1, "{all} {place}, {filler}."), (1, "a view of {all} {place}."),
    (2, "{0} next to {rest}."), (2, "{0} near {rest} {place}."), (2, "{0} and {rest} in one picture."),
    (2, "{0} beside {rest}, {filler}."),
)


@lru_cache(maxsize=1)
def class_synonyms() -> tuple[tuple[str, ...], ...]:
    """Synonyms of every class in :data:`CLASSES` order, read from the synonym file (name first)."""
    data = load_synonyms("toy")
    by_name = {c["name"]: tuple(c["synonyms"]) for c in data["classes"]}
    if sorted(by_name) != sorted(CLASSES):
        raise ValueError(f"{SYNONYM_FILE} names {sorted(by_name)}, the toy world draws {sorted(CLASSES)}")
    for name, words in by_name.items():
        if not words or words[0] != name:
            raise ValueError(f"{SYNONYM_FILE}: the first synonym of {name!r} must be the name itself")
    return tuple(by_name[name] for name in CLASSES)


@lru_cache(maxsize=1024)
def with_article(phrase: str) -> str:
    """'a ball', 'an orange ball' (inflect's rules, cached: inflect calls are slow)."""
    return inflect_engine().a(phrase)


def colour_name(rgb: tuple[float, float, float]) -> str:
    """A basic colour word for an RGB triple in [0, 1]."""
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    if v < 0.22:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    if (h < 0.11 or h >= 0.93) and v < 0.55:
        return "brown"
    for bound, name in ((0.04, "red"), (0.11, "orange"), (0.19, "yellow"), (0.45, "green"), (0.7, "blue"),
                        (0.83, "purple"), (0.93, "pink")):
        if h < bound:
            return name
    return "red"


def _size_word(scale: float, rng: np.random.Generator) -> str | None:
    if scale > 0.3:
        return pick(rng, ("large", "big", "huge"))
    if scale < 0.17:
        return pick(rng, ("small", "little", "tiny"))
    return None


def _position(obj: ObjectSpec) -> str:
    if obj.cx < 0.33:
        return "on the left"
    if obj.cx > 0.67:
        return "on the right"
    if obj.cy < 0.33:
        return "at the top"
    if obj.cy > 0.67:
        return "at the bottom"
    return "in the middle"


def noun_phrase(objects: list[ObjectSpec], rng: np.random.Generator) -> str:
    """How a caption names a group of same-class objects: count, maybe attributes, a synonym."""
    synonyms = class_synonyms()[objects[0].label]
    noun = synonyms[weighted_index(rng, [2.0] + [1.0] * (len(synonyms) - 1))]  # the plain name most often
    adjectives = []
    sizes = {_size_word(o.scale, rng) for o in objects}
    if len(sizes) == 1 and None not in sizes and rng.random() < 0.2:
        adjectives.append(sizes.pop())
    colours = {colour_name(o.colour) for o in objects}
    if len(colours) == 1 and rng.random() < 0.3:
        adjectives.append(colours.pop())
    body = " ".join(adjectives + [noun if len(objects) == 1 else plural(noun)])
    n = len(objects)
    if n == 1:
        first = rng.random()
        phrase = f"one {body}" if first < 0.08 else f"the {body}" if first < 0.16 else with_article(body)
        return f"{phrase} {_position(objects[0])}" if rng.random() < 0.15 else phrase
    roll = rng.random()
    if roll < 0.1:
        return body  # bare plural: "cars on a street"
    if n == 2:
        return f"{pick(rng, PAIR_WORDS)} {body}"
    return f"{NUMBER_WORDS[n] if roll < 0.6 else pick(rng, FEW_WORDS)} {body}"


def _join(phrases: list[str], rng: np.random.Generator) -> str:
    if len(phrases) == 1:
        return phrases[0]
    comma = "," if len(phrases) > 2 and rng.random() < 0.5 else ""
    return ", ".join(phrases[:-1]) + f"{comma} and {phrases[-1]}"


def groups_by_salience(objects: tuple[ObjectSpec, ...]) -> list[list[ObjectSpec]]:
    """Objects grouped by class, the group with the largest total area first."""
    groups: dict[int, list[ObjectSpec]] = {}
    for obj in objects:
        groups.setdefault(obj.label, []).append(obj)
    return sorted(groups.values(), key=lambda g: (-sum(o.scale**2 for o in g), g[0].label))


def caption(scene: Scene, rng: np.random.Generator, mention_p: float = 0.6) -> str:
    """One caption naming a random subset (never empty) of the scene's classes, salient ones likelier."""
    groups = groups_by_salience(scene.objects)
    salience = np.linspace(1.0, 0.6, len(groups))  # the largest group is named most often
    named = [g for g, s in zip(groups, salience) if rng.random() < mention_p * s]
    if not named:
        named = [groups[weighted_index(rng, salience)]]
    if rng.random() < 0.3:  # captions do not always list objects by size
        named = [named[i] for i in rng.permutation(len(named))]
    phrases = [noun_phrase(g, rng) for g in named]
    usable = [t for k, t in TEMPLATES if k <= len(phrases)]
    template = usable[rng.integers(len(usable))]
    rest = _join(phrases[1:], rng) if len(phrases) > 1 else ""
    text = template.format(*phrases[:1], all=_join(phrases, rng), rest=rest, place=pick(rng, PLACES[scene.kind]),
                           filler=pick(rng, FILLERS), adj=pick(rng, SCENE_ADJECTIVES),
                           be="is" if len(named) == 1 and len(named[0]) == 1 else "are")
    if rng.random() < 0.3:
        text = text.rstrip(".")
    return text[0].upper() + text[1:] if rng.random() < 0.6 else text


def make_captions(scene: Scene, rng: np.random.Generator, n: int | None = None) -> list[str]:
    """``n`` captions of a scene (3-5 when None); the first one names more of its objects."""
    n = int(rng.integers(3, 6)) if n is None else n
    return [caption(scene, rng, mention_p=0.85 if i == 0 else 0.6) for i in range(n)]
