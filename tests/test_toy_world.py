"""The toy world: reproducible generation, annotations and captions true to the scenes, the
manifest guard, the toy text-to-image renderer, and the shipped toy CLIP checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data.base import DataError
from bench.data.captions import CaptionParser
from bench.toy import captions as toy_captions
from bench.toy.build import SPLITS, TEXT_ONLY_STREAM, ensure_toy_dataset, example_captions, toy_example
from bench.toy.t2i import parse_objects, render_caption
from bench.toy.world import CLASSES, generate_example, sample_scene

SMALL = dict(n_train=6, n_val=3, n_test=3, n_text_only=8, seed=0, image_size=128, workers=1)
# sha256 over the decoded pixels of every image and every JSON file of the SMALL dataset (recorded
# with numpy 2.4.6 / Pillow 13.0.0). Pixels rather than PNG bytes: a zlib or Pillow upgrade may
# re-encode the same pixels differently, and that must not read as a changed dataset.
SMALL_CONTENT_SHA256 = "1076db77b784ea61ddda823f651c1feede52077c6271e0482a80a73aa755a3cb"


def content_hash(root: Path) -> str:
    """sha256 of the decoded pixels of every PNG and the bytes of every other file, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(np.asarray(Image.open(path)).tobytes() if path.suffix == ".png" else path.read_bytes())
    return digest.hexdigest()


def bytes_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def small_toy(tmp_path_factory) -> Path:
    return ensure_toy_dataset(tmp_path_factory.mktemp("toy") / "toy", **SMALL)


@pytest.fixture(scope="module")
def parser() -> CaptionParser:
    return CaptionParser.from_file("toy", list(CLASSES))


def load(root: Path, name: str) -> dict:
    return json.loads((root / "annotations" / name).read_text())


def test_generation_is_reproducible(small_toy, tmp_path):
    again = ensure_toy_dataset(tmp_path / "again", **{**SMALL, "workers": 2})  # worker count never changes bytes
    assert bytes_hash(again) == bytes_hash(small_toy)
    assert content_hash(small_toy) == SMALL_CONTENT_SHA256


def test_layout_is_coco_2014(small_toy):
    for stem, n in (("train2014", 6), ("minival2014", 3), ("val2014", 3)):
        files = sorted(p.name for p in (small_toy / stem).iterdir())
        instances = load(small_toy, f"instances_{stem}.json")
        assert files == sorted(im["file_name"] for im in instances["images"]) and len(files) == n
        assert {a["image_id"] for a in load(small_toy, f"captions_{stem}.json")["annotations"]} == \
            {im["id"] for im in instances["images"]}
        assert [(c["id"], c["name"]) for c in instances["categories"]] == list(enumerate(CLASSES, 1))
        with Image.open(small_toy / stem / files[0]) as image:
            assert image.size == (128, 128) and image.mode == "RGB"
    textonly = load(small_toy, "captions_textonly.json")
    assert len(textonly["annotations"]) == 8
    assert not list(small_toy.glob("**/toy_textonly_*.png"))  # caption-only scenes are never rendered
    assert json.loads((small_toy / "toy_manifest.json").read_text())["params"]["n_train"] == 6


def test_annotations_match_the_scenes(small_toy):
    for stream, stem, first_id in SPLITS.values():
        instances = load(small_toy, f"instances_{stem}.json")
        for image in instances["images"]:
            index = image["id"] - first_id
            rendered = generate_example(SMALL["seed"], stream, index)
            annotations = [a for a in instances["annotations"] if a["image_id"] == image["id"]]
            assert [a["category_id"] - 1 for a in annotations] == [o.label for o in rendered.scene.objects]
            for a, box, area in zip(annotations, rendered.boxes, rendered.areas):
                x, y, w, h = a["bbox"]
                assert a["bbox"] == list(box) and a["area"] == area and a["iscrowd"] == 0
                assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and 0 < area <= w * h


def test_every_caption_mention_is_a_true_object(small_toy, parser):
    for _, stem, _ in SPLITS.values():
        labels = {}
        for a in load(small_toy, f"instances_{stem}.json")["annotations"]:
            labels.setdefault(a["image_id"], set()).add(a["category_id"] - 1)
        for c in load(small_toy, f"captions_{stem}.json")["annotations"]:
            mentioned = parser.classes_in(c["caption"])
            assert mentioned and mentioned <= labels[c["image_id"]], c["caption"]
    for c in load(small_toy, "captions_textonly.json")["annotations"]:
        index = c["image_id"] - 3_000_001
        scene = sample_scene(np.random.default_rng([SMALL["seed"], TEXT_ONLY_STREAM, index]))
        assert parser.classes_in(c["caption"]) <= set(scene.labels()), c["caption"]


def test_captions_of_many_scenes_are_true_and_varied(parser):
    """600 scenes, 3-5 captions each: no false class word, objects left out, synonyms and plurals used."""
    captions, left_out, texts = 0, 0, set()
    for index in range(600):
        scene = sample_scene(np.random.default_rng([1, 9, index]))
        for text in example_captions(scene, 1, 9, index):
            mentioned = parser.classes_in(text)
            assert mentioned and mentioned <= set(scene.labels()), text
            captions += 1
            left_out += mentioned != set(scene.labels())
            texts.add(text)
    words = " ".join(texts)
    assert len(texts) > 0.95 * captions and 0.2 < left_out / captions < 0.8
    for form in ("automobiles", "a couple of", "two", "fire engine", "sailboats", "lorries", "fish"):
        assert form in words, form


def test_phrases_outside_noun_phrases_name_no_class(parser):
    fixed = [*toy_captions.FILLERS, *toy_captions.SCENE_ADJECTIVES, *toy_captions.FEW_WORDS, *toy_captions.PAIR_WORDS,
             *(p for places in toy_captions.PLACES.values() for p in places),
             *(t for _, t in toy_captions.TEMPLATES)]
    assert [p for p in fixed if parser.classes_in(p)] == []


def test_compound_class_names_do_not_fire_their_parts(parser):
    name = {c: i for i, c in enumerate(CLASSES)}
    cases = {
        "a fire truck next to a sail boat": {"fire truck", "sail boat"},
        "two trucks and a sailboat": {"truck", "sail boat"},
        "a fire engine, a lorry and a rowboat": {"fire truck", "truck", "boat"},
        "firetrucks on a street": {"fire truck"},
    }
    for text, expected in cases.items():
        assert parser.classes_in(text) == {name[c] for c in expected}, text
    assert parse_objects("two fire trucks near a truck and three sailing boats") == [
        (name["fire truck"], 2, None), (name["truck"], 1, None), (name["sail boat"], 3, None)]
    assert parse_objects("a couple of red automobiles, some fish and the moons") == [
        (name["car"], 2, "red"), (name["fish"], 3, None), (name["moon"], 2, None)]


def test_colour_does_not_identify_the_class():
    colours = {c: set() for c in range(len(CLASSES))}
    for index in range(400):
        for obj in sample_scene(np.random.default_rng([2, 9, index])).objects:
            colours[obj.label].add(toy_captions.colour_name(obj.colour))
    assert min(len(names) for names in colours.values()) >= 6


def test_scene_types_make_some_pairs_frequent_and_others_rare():
    pairs = np.zeros((len(CLASSES), len(CLASSES)))
    for index in range(800):
        labels = sample_scene(np.random.default_rng([3, 9, index])).labels()
        for a in labels:
            for b in labels:
                pairs[a, b] += a != b
    name = {c: i for i, c in enumerate(CLASSES)}
    assert pairs[name["car"], name["house"]] > 5 * max(pairs[name["car"], name["fish"]], 1)
    assert pairs[name["moon"], name["star"]] > 10 * max(pairs[name["moon"], name["cup"]], 1)


def test_manifest_mismatch_is_an_error(small_toy, tmp_path):
    assert ensure_toy_dataset(small_toy, **SMALL) == small_toy  # same parameters: nothing to do
    with pytest.raises(DataError, match=r"n_train: 6 on disk, 7 asked.*delete the folder"):
        ensure_toy_dataset(small_toy, **{**SMALL, "n_train": 7})
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match="no toy_manifest.json"):
        ensure_toy_dataset(foreign, **SMALL)
    assert not list(tmp_path.glob(".photos.tmp-*"))


def test_t2i_is_deterministic_per_caption_and_seed():
    text = "a photo of two cars and a fire truck"
    first = np.asarray(render_caption(text, seed=3))
    assert first.shape == (128, 128, 3)
    assert np.array_equal(first, np.asarray(render_caption(text, seed=3)))
    assert not np.array_equal(first, np.asarray(render_caption(text, seed=4)))
    assert not np.array_equal(first, np.asarray(render_caption("a photo of two cars", seed=3)))


def ink_pixels(image: Image.Image) -> np.ndarray:
    """Pixels dark enough to be the renderer's ink outlines (paper is bright cream)."""
    return np.asarray(image.convert("L")) < 90


def test_t2i_renders_the_named_objects():
    assert ink_pixels(render_caption("an empty picture with nothing in it", seed=0)).sum() == 0
    ink = ink_pixels(render_caption("a ball and a star", seed=0))  # two objects: one per half of a 2x1 grid
    assert ink[:, :64].sum() > 50 and ink[:, 64:].sum() > 50
    one = ink_pixels(render_caption("a clock", seed=1)).sum()
    four = ink_pixels(render_caption("four clocks", seed=1)).sum()
    assert one > 300 and four > 1.3 * one  # four half-size clocks: twice the outline of one


def test_t2i_style_differs_from_the_toy_photos():
    photos = np.stack([np.asarray(generate_example(0, 0, i).image, dtype=np.float32) for i in range(8)])
    texts = [text for i in range(4) for text in toy_example(0, 0, i)[1]][:8]
    drawn = np.stack([np.asarray(render_caption(text, seed=i), dtype=np.float32) for i, text in enumerate(texts)])
    def saturation(x):
        return (x.max(-1) - x.min(-1)).mean()
    assert drawn.mean() > photos.mean() + 30  # bright paper
    assert saturation(drawn) < 0.6 * saturation(photos)  # pastel


def test_frequency_baseline_is_the_map_of_a_constant_scorer():
    from bench.toy.pretrain import frequency_baseline, mean_ap

    labels = (np.random.default_rng(0).random((200, 6)) < [0.05, 0.1, 0.2, 0.3, 0.5, 0.0]).astype(np.uint8)
    assert mean_ap(np.zeros(labels.shape), labels) == pytest.approx(frequency_baseline(labels))
    assert mean_ap(labels.astype(float), labels) == pytest.approx(100.0)  # the 6th class has no positive: skipped


def test_modality_gap_statistics():
    import torch

    from bench.toy.pretrain import modality_gap

    feats = torch.nn.functional.normalize(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    same = modality_gap(feats, feats)
    assert same["paired_image_text_cosine"] == pytest.approx(1.0) and same["centroid_distance"] == pytest.approx(0.0)
    assert same["mean_image_image_cosine"] == pytest.approx(same["mean_text_text_cosine"])
    shifted = torch.nn.functional.normalize(feats + torch.tensor([3.0] + [0.0] * 7), dim=-1)
    gap = modality_gap(feats, shifted)
    assert gap["centroid_distance"] > 0.5 and gap["mean_text_text_cosine"] > gap["mean_image_image_cosine"]


def test_pretrain_script_runs_end_to_end(tmp_path):
    from safetensors.torch import load_file

    from bench.toy.pretrain import main

    assert main(["--out", str(tmp_path), "--steps", "2", "--warmup", "1", "--n-train", "24", "--n-eval", "12",
                 "--n-test", "12", "--batch", "8", "--eval-every", "1", "--threads", "1", "--workers", "1"]) == 0
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["steps_done"] == 2 and [h["step"] for h in card["history"]] == [1, 2]
    assert set(card["zero_shot"]) >= {"held_out_map", "held_out_frequency_baseline", "toy_test_map"}
    state = load_file(str(tmp_path / "toy-clip.safetensors"))
    assert state["visual.attnpool.positional_embedding"].dtype.is_floating_point
    assert {str(v.dtype) for v in state.values() if v.is_floating_point()} == {"torch.float16"}
    zero_rows = (state["token_embedding.weight"].abs().sum(1) == 0).sum().item()
    assert zero_rows == 49408 - card["token_rows_kept"] and card["token_rows_kept"] < 1000
    assert -1 <= card["modality_gap"]["paired_image_text_cosine"] <= 1
    assert card["command"].startswith("python -m bench.toy.pretrain --out")


MODEL_DIR = Path(__file__).resolve().parents[1] / "bench" / "toy" / "model"
# encode_image of the first toy test image and encode_text of "a photo of a fire truck." through the
# shipped checkpoint (first 6 of 128 dimensions, unnormalised), recorded when it was trained.
SHIPPED_IMAGE_FEATURES = [1.826, -0.7411, -0.5986, 0.4787, 1.1306, -0.3853]
SHIPPED_TEXT_FEATURES = [-0.3541, 0.2412, -0.2628, 0.3195, 0.1847, 0.1164]


@pytest.fixture(scope="module")
def shipped_clip():
    import open_clip

    open_clip.add_model_config(str(MODEL_DIR / "toy-clip.json"))
    model, _, preprocess = open_clip.create_model_and_transforms(
        "toy-clip", pretrained=str(MODEL_DIR / "toy-clip.safetensors"))
    return model.eval(), preprocess, open_clip.get_tokenizer("toy-clip")


def test_shipped_checkpoint_reproduces_its_embeddings(shipped_clip):
    import torch

    model, preprocess, tokenizer = shipped_clip
    with torch.no_grad():
        image = model.encode_image(preprocess(generate_example(0, SPLITS["test"][0], 0).image)[None])[0]
        text = model.encode_text(tokenizer(["a photo of a fire truck."]))[0]
    assert image.shape == text.shape == (128,)
    assert image[:6].tolist() == pytest.approx(SHIPPED_IMAGE_FEATURES, abs=2e-3)
    assert text[:6].tolist() == pytest.approx(SHIPPED_TEXT_FEATURES, abs=2e-3)
    card = json.loads((MODEL_DIR / "card.json").read_text())
    assert card["model"] == "toy-clip" and card["checkpoint"] == "toy-clip.safetensors"


def test_shipped_checkpoint_recognises_toy_objects_zero_shot(shipped_clip):
    import torch

    from bench.toy.pretrain import PROMPT, frequency_baseline, mean_ap

    model, preprocess, tokenizer = shipped_clip
    stream = SPLITS["test"][0]
    rendered = [generate_example(0, stream, i) for i in range(100)]
    labels = np.zeros((100, len(CLASSES)), np.uint8)
    for row, r in enumerate(rendered):
        labels[row, r.scene.labels()] = 1
    with torch.no_grad():
        images = torch.nn.functional.normalize(model.encode_image(torch.stack([preprocess(r.image) for r in rendered])),
                                               dim=-1)
        texts = torch.nn.functional.normalize(model.encode_text(tokenizer([PROMPT.format(c) for c in CLASSES])), dim=-1)
    assert mean_ap((images @ texts.T).numpy(), labels) > frequency_baseline(labels) + 15


def test_renderer_outline_is_the_ring_inside_the_silhouette():
    """The ink line: silhouette pixels with a non-silhouette pixel (or the border) within ``width`` in the
    square window, checked against that definition pixel by pixel on random masks."""
    from bench.toy.t2i import _outline

    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = rng.integers(1, 24, size=2)
        alpha = (rng.random((h, w)) < rng.random()).astype(np.float32)
        width = int(rng.integers(1, 4))
        solid = alpha > 0.5
        expected = np.zeros_like(solid)
        for y in range(h):
            for x in range(w):
                window = solid[max(y - width, 0):y + width + 1, max(x - width, 0):x + width + 1]
                at_border = y < width or x < width or y + width >= h or x + width >= w
                expected[y, x] = solid[y, x] and (at_border or not window.all())
        assert np.array_equal(_outline(alpha, width), expected)
