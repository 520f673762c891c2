"""Full-size stand-ins of the real datasets, for measuring the harness at the size users run.

``write_coco``, ``write_voc`` and ``write_nuswide`` write trees in the official on-disk layouts the readers
of this package read (``coco.py``, ``voc.py``, ``nuswide.py``, including NUS-WIDE's Flickr tags for the zsl
setting), at the real image and class counts, with label statistics shaped like the real ones and tiny
noise images. ``fraction`` scales every image count (1/16, 1/4, 1 in ``benchmarks/bench_scale.py``).
The numbers they give say nothing about accuracy: the images are coloured noise with one patch per label.

Label statistics: per class a Zipf profile ``top * rank**-a`` whose exponent makes the mean number of labels
per labelled image what is commonly reported for the dataset (``PROFILES``; approximate, not the exact
counts), labels drawn independently per class, plus the real share of images with no label. COCO also
gets five captions per image naming its classes through the caption parser's synonyms, and instance
annotations with polygons, about as many per image and as large as the real json files'.

    python -m bench.data.synthetic coco /tmp/coco --fraction 0.25
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.captions import load_synonyms
from bench.data.voc import VOC_CLASSES

# images per split in the official releases, and how many carry at least one label
COUNTS = {
    "coco": {"train": (82_783, 82_081), "test": (40_504, 40_137)},  # DualCoOp's counts of annotated images
    "voc2007": {"train": (5_011, 5_011), "test": (4_952, 4_952)},
    "nuswide": {"train": (161_789, 125_449), "test": (107_859, 83_898)},  # TaI-DPT's labelled counts
}
# (share of the most frequent class, mean labels per labelled image): approximate published statistics
PROFILES = {"coco": (0.54, 2.9), "voc2007": (0.40, 1.4), "nuswide": (0.28, 2.4), "nuswide_tags": (0.10, 5.0)}
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]  # 80 ids, with gaps
INSTANCES_PER_LABEL = 2.5  # COCO train: about 605k instances for about 240k (image, class) labels
TEMPLATES = {  # caption templates by how many classes they name
    1: ("a photo of a {}.", "a close up of a {} on a table.", "there is a {} in the picture."),
    2: ("a {} next to a {}.", "a {} with a {} in the background.", "a picture of a {} and a {}."),
    3: ("a {}, a {} and a {} in one room.", "an image showing a {}, a {} and a {}."),
}


def zipf_frequencies(n_classes: int, top: float, mean: float) -> np.ndarray:
    """``f1 * rank**-a`` for ranks 1..n such that among images drawn with these per-class frequencies that have
    at least one label (what the datasets count), the most frequent class is in a ``top`` share of them and
    the mean number of labels is ``mean``: ``a`` by bisection for the mean, ``f1`` by fixed-point iteration."""
    ranks = np.arange(1, n_classes + 1, dtype=np.float64)

    def profile(f1: float, a: float) -> tuple[np.ndarray, float]:
        freqs = np.minimum(f1 * ranks ** -a, 1.0)
        return freqs, 1.0 - np.prod(1.0 - freqs)  # and the chance of at least one label

    f1 = top
    for _ in range(30):
        low, high = 0.0, 10.0
        for _ in range(60):
            a = (low + high) / 2
            freqs, labelled = profile(f1, a)
            low, high = (a, high) if freqs.sum() / labelled > mean else (low, a)
        f1 = top * profile(f1, (low + high) / 2)[1]
    return profile(f1, (low + high) / 2)[0]


def sample_labels(rng: np.random.Generator, n_images: int, n_labelled: int, freqs: np.ndarray) -> np.ndarray:
    """Bool [n_images, C]: ``n_images - n_labelled`` rows without a label (spread at random), the others with
    each class drawn independently at ``freqs`` and redrawn until the row has at least one."""
    labels = np.zeros((n_images, len(freqs)), dtype=bool)
    rows = np.sort(rng.choice(n_images, size=n_labelled, replace=False))
    todo = rows
    while len(todo):
        labels[todo] = rng.random((len(todo), len(freqs))) < freqs
        todo = todo[~labels[todo].any(1)]
    return labels


def _palette(n: int) -> np.ndarray:
    return np.random.default_rng(12345).integers(40, 256, size=(n, 3), dtype=np.uint8)


def _write_images(jobs: list[tuple[str, np.ndarray, int]], size: int) -> int:
    """Write tiny JPEGs: grey noise (seeded per image, so every file differs) with a coloured patch per label."""
    palette = _palette(1024)
    for path, classes, seed in jobs:
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
        for c in classes:
            x, y = rng.integers(0, size - size // 4, 2)
            pixels[y:y + size // 4, x:x + size // 4] = palette[c % len(palette)]
        Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return len(jobs)


def write_images(paths: list[Path], labels: np.ndarray, seed: int, size: int = 16, workers: int = 2) -> None:
    """One tiny JPEG per path, in ``workers`` processes (the folders must exist)."""
    jobs = [(str(p), np.flatnonzero(row), seed * 10_000_019 + i) for i, (p, row) in enumerate(zip(paths, labels))]
    chunks = [jobs[i:i + 2000] for i in range(0, len(jobs), 2000)]
    if workers <= 1 or len(chunks) < 2:
        for chunk in chunks:
            _write_images(chunk, size)
        return
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_images, chunks, [size] * len(chunks)))


def scaled(dataset: str, fraction: float) -> dict[str, tuple[int, int]]:
    """(images, labelled images) per split at ``fraction`` of the real counts (at least 8 images)."""
    return {split: (max(8, round(n * fraction)), max(8, round(k * fraction)))
            for split, (n, k) in COUNTS[dataset].items()}


def _polygon(rng: np.random.Generator) -> list[float]:
    return [round(float(v), 2) for v in rng.uniform(0, 640, 26)]


def write_coco(root: str | Path, fraction: float = 1.0, seed: int = 0, size: int = 16, workers: int = 2) -> dict:
    """MS-COCO 2014: ``annotations/instances_{train,val}2014.json`` (80 categories with COCO's ids, polygons),
    ``annotations/captions_{train,val}2014.json`` (5 per image), ``{train,val}2014/COCO_*_<id>.jpg``."""
    root = Path(root)
    classes = [c["name"] for c in load_synonyms("coco")["classes"]]
    freqs = zipf_frequencies(len(classes), *PROFILES["coco"])
    synonyms = {c["name"]: c["synonyms"] for c in load_synonyms("coco")["classes"]}
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    out, next_id = {}, 1
    for split, stem in (("train", "train2014"), ("test", "val2014")):
        n_images, n_labelled = scaled("coco", fraction)[split]
        labels = sample_labels(rng, n_images, n_labelled, freqs)
        ids = np.sort(rng.choice(600_000, size=n_images, replace=False)) + 1
        names = [f"COCO_{stem}_{i:012d}.jpg" for i in ids]
        images = [{"id": int(i), "file_name": n, "height": 480, "width": 640} for i, n in zip(ids, names)]
        anns, captions = [], []
        for row, image_id in enumerate(ids):
            present = np.flatnonzero(labels[row])
            for c in present:
                for _ in range(1 + rng.poisson(INSTANCES_PER_LABEL - 1)):
                    box = [round(float(v), 2) for v in rng.uniform(0, 320, 4)]
                    anns.append({"id": next_id, "image_id": int(image_id), "category_id": COCO_IDS[c],
                                 "segmentation": [_polygon(rng)], "area": round(box[2] * box[3], 2),
                                 "bbox": box, "iscrowd": 0})
                    next_id += 1
            for _ in range(5):
                words = [str(rng.choice(synonyms[classes[c]])) for c in rng.permutation(present)[:3]]
                template = str(rng.choice(TEMPLATES[len(words)])) if words else "an empty room."
                captions.append({"id": next_id, "image_id": int(image_id), "caption": template.format(*words)})
                next_id += 1
        categories = [{"id": i, "name": n, "supercategory": "thing"} for i, n in zip(COCO_IDS, classes)]
        for kind, body in (("instances", {"annotations": anns, "categories": categories}),
                           ("captions", {"annotations": captions})):
            with open(root / "annotations" / f"{kind}_{stem}.json", "w") as f:
                json.dump({"info": {"description": "bench synthetic COCO 2014 (full-size stand-in)"},
                           "images": images, **body}, f)
        (root / stem).mkdir(exist_ok=True)
        write_images([root / stem / n for n in names], labels, seed * 2 + len(out), size, workers)
        out[split] = labels
    return out


def write_voc(root: str | Path, fraction: float = 1.0, seed: int = 0, size: int = 16, workers: int = 2) -> dict:
    """VOC2007 (the ``VOCdevkit/VOC2007`` folder): ``Annotations/<id>.xml`` with one object per label (some
    of them also as a difficult second object), ``ImageSets/Main/{trainval,test}.txt``, ``JPEGImages/``."""
    root = Path(root)
    freqs = zipf_frequencies(len(VOC_CLASSES), *PROFILES["voc2007"])
    rng = np.random.default_rng(seed)
    for folder in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    out, first = {}, 1
    for split, listed in (("train", "trainval"), ("test", "test")):
        n_images, n_labelled = scaled("voc2007", fraction)[split]
        labels = sample_labels(rng, n_images, n_labelled, freqs)
        ids = [f"{first + i:06d}" for i in range(n_images)]
        first += n_images
        for image_id, row in zip(ids, labels):
            objects = "".join(
                f"<object><name>{VOC_CLASSES[c]}</name><pose>Unspecified</pose><truncated>0</truncated>"
                f"<difficult>{difficult}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax>"
                f"<ymax>50</ymax></bndbox></object>"
                for c in np.flatnonzero(row) for difficult in ((0, 1) if rng.random() < 0.1 else (0,)))
            (root / "Annotations" / f"{image_id}.xml").write_text(
                f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename><size><width>500</width>"
                f"<height>375</height><depth>3</depth></size>{objects}</annotation>")
        (root / "ImageSets" / "Main" / f"{listed}.txt").write_text("\n".join(ids) + "\n")
        write_images([root / "JPEGImages" / f"{i}.jpg" for i in ids], labels, seed * 2 + len(out), size, workers)
        out[split] = labels
    return out


def write_nuswide(root: str | Path, fraction: float = 1.0, seed: int = 0, size: int = 16, workers: int = 2,
                  tags: bool = True) -> dict:
    """NUS-WIDE: ``Concepts81.txt``, ``ImageList/{Train,Test}Imagelist.txt`` (Windows separators, as released),
    ``TrainTestLabels/Labels_<concept>_{Train,Test}.txt``, ``Flickr/<subdir>/<file>.jpg``; with ``tags``, the
    zsl files ``NUS_WID_Tags/{TagList1k,AllTags1k}.txt`` and ``ImageList/Imagelist.txt`` (every image): 1,000
    tags of which 75 are concepts, so 925 seen tags + 81 concepts = 1,006 classes, as the real release."""
    root = Path(root)
    concepts = [c["name"] for c in load_synonyms("nuswide")["classes"]]
    freqs = zipf_frequencies(len(concepts), *PROFILES["nuswide"])
    rng = np.random.default_rng(seed)
    for folder in ("ImageList", "TrainTestLabels", "NUS_WID_Tags"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "Concepts81.txt").write_text("\n".join(concepts) + "\n")
    subdirs = [f"scene{i:03d}" for i in range(704)]  # the release has 704 Flickr folders
    out, every = {}, []
    for split, tag in (("train", "Train"), ("test", "Test")):
        n_images, n_labelled = scaled("nuswide", fraction)[split]
        labels = sample_labels(rng, n_images, n_labelled, freqs)
        listed = [f"{subdirs[i % len(subdirs)]}\\{len(every) + i:06d}_{rng.integers(10**9, 10**10)}.jpg"
                  for i in range(n_images)]
        every += listed
        (root / "ImageList" / f"{tag}Imagelist.txt").write_text("\n".join(listed) + "\n")
        for c, concept in enumerate(concepts):
            (root / "TrainTestLabels" / f"Labels_{concept}_{tag}.txt").write_text(
                "\n".join("1" if v else "0" for v in labels[:, c]) + "\n")
        paths = [root / "Flickr" / p.replace("\\", "/") for p in listed]
        for sub in {p.parent for p in paths}:
            sub.mkdir(parents=True, exist_ok=True)
        write_images(paths, labels, seed * 2 + len(out), size, workers)
        out[split] = labels
    if tags:
        _write_tags(root, concepts, every, out["train"], rng)
    return out


def _write_tags(root: Path, concepts: list[str], images: list[str], train_labels: np.ndarray,
                rng: np.random.Generator) -> None:
    """TagList1k.txt (75 concepts + 925 other tags), Imagelist.txt and the 0/1 matrix AllTags1k.txt, one row per
    image (the train images first), written in blocks so memory stays bounded; ``synonyms_1006.json`` for the
    zsl setting's class names (``dataset.synonyms``); and ``captions.jsonl``, one
    caption per train image naming up to three of its tags and concepts, in the OpenImages
    localized-narratives format TaI-DPT trains on (``dataset.caption_files``)."""
    tags = concepts[:75] + [f"tag{i:03d}" for i in range(925)]
    captions = open(root / "captions.jsonl", "w")
    (root / "NUS_WID_Tags" / "TagList1k.txt").write_text("\n".join(tags) + "\n")
    # the zsl setting's 1,006 class names need synonyms (dataset.synonyms): the shipped concepts', each tag itself
    shipped = load_synonyms("nuswide")["classes"]
    (root / "NUS_WID_Tags" / "synonyms_1006.json").write_text(json.dumps({"classes": shipped + [
        {"name": t, "synonyms": [t]} for t in tags if t not in concepts]}, indent=0))
    (root / "ImageList" / "Imagelist.txt").write_text(
        "\n".join(f"C:\\ImageData\\Flickr\\{p}" for p in images) + "\n")
    freqs = zipf_frequencies(len(tags), *PROFILES["nuswide_tags"])[rng.permutation(len(tags))]
    digits = np.array([ord("0"), ord("1")], dtype=np.uint8)
    with open(root / "NUS_WID_Tags" / "AllTags1k.txt", "wb") as f:
        for start in range(0, len(images), 4096):
            block = rng.random((min(4096, len(images) - start), len(tags))) < freqs
            text = np.full((len(block), 2 * len(tags)), ord(" "), dtype=np.uint8)
            text[:, 0::2] = digits[block.astype(np.int64)]
            text[:, -1] = ord("\n")
            f.write(text.tobytes())
            for row in range(start, min(start + len(block), len(train_labels))):
                words = [tags[t] for t in np.flatnonzero(block[row - start])[:2]]
                words += [concepts[c] for c in np.flatnonzero(train_labels[row])[:1]]
                caption = "a photo of " + " and ".join(f"a {w}" for w in words) + "." if words else "a photo."
                captions.write(json.dumps({"image_id": images[row], "caption": caption}) + "\n")
    captions.close()


WRITERS = {"coco": write_coco, "voc2007": write_voc, "nuswide": write_nuswide}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(WRITERS))
    parser.add_argument("root", help="folder to write the tree to (COCO root, VOC2007 folder, NUS-WIDE root)")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the real image counts (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=16, help="image side in pixels (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="processes writing images (default 2)")
    args = parser.parse_args(argv)
    labels = WRITERS[args.dataset](args.root, fraction=args.fraction, seed=args.seed, size=args.size,
                                   workers=args.workers)
    for split, matrix in labels.items():
        labelled = matrix[matrix.any(1)]
        print(f"{args.dataset} {split}: {len(matrix)} images, {len(labelled)} labelled, {labelled.sum(1).mean():.2f} "
              f"labels per labelled image, most frequent class in {labelled.mean(0).max():.0%} of them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
