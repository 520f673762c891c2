"""Write the toy world to disk in the MS-COCO 2014 layout, once; later calls reuse it.

    root/train2014/*.png                   toy train split
    root/minival2014/*.png                 toy val split
    root/val2014/*.png                     toy TEST split (COCO's val2014 is the usual MLR test set)
    root/annotations/instances_{train,minival,val}2014.json
    root/annotations/captions_{train,minival,val}2014.json
    root/annotations/captions_textonly.json    captions of scenes that were never rendered
    root/toy_manifest.json                 generation parameters + format version

Every image is a pure function of ``(seed, split id, index)``, so a split can be generated in
any order or in parallel and the bytes are the same. Generation writes into a temporary folder
beside ``root`` and renames it into place at the end, so a half-written dataset is never read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bench.data.base import DataError
from bench.errors import UsageError
from bench.toy.captions import make_captions
from bench.toy.world import CLASSES, SUPERCATEGORY, Rendered, Scene, generate_example, sample_scene

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# split -> (seed-stream id, COCO folder stem, first image id); the pretraining stream (4) is never written here
SPLITS = {"train": (0, "train2014", 1), "val": (1, "minival2014", 1_000_001), "test": (2, "val2014", 2_000_001)}
TEXT_ONLY_STREAM, TEXT_ONLY_FIRST_ID = 3, 3_000_001
PRETRAIN_STREAM = 4
CAPTION_SUBSTREAM = 1  # captions draw from default_rng([seed, stream, index, 1]): editing them leaves images alone
PNG_COMPRESS_LEVEL = 1  # zlib level 1: 2x faster than 6 for 14% larger files (sensor noise does not compress)


def toy_example(seed: int, stream: int, index: int, image_size: int = 128) -> tuple[Rendered, list[str]]:
    """Image ``index`` of a seed stream with its 3-5 captions."""
    rendered = generate_example(seed, stream, index, image_size)
    return rendered, example_captions(rendered.scene, seed, stream, index)


def example_captions(scene: Scene, seed: int, stream: int, index: int) -> list[str]:
    """The 3-5 captions of image ``index`` of a stream, from their own seed sub-stream."""
    return make_captions(scene, np.random.default_rng([seed, stream, index, CAPTION_SUBSTREAM]))


def text_only_captions(seed: int, n: int) -> list[str]:
    """One caption each for ``n`` scenes that are sampled but never rendered."""
    captions = []
    for index in range(n):
        scene = sample_scene(np.random.default_rng([seed, TEXT_ONLY_STREAM, index]))
        rng = np.random.default_rng([seed, TEXT_ONLY_STREAM, index, CAPTION_SUBSTREAM])
        captions.append(make_captions(scene, rng, n=1)[0])
    return captions


def _light(scene: Scene) -> Scene:
    """The scene without its polygons (cheap to send between processes; enough to caption it)."""
    return Scene(scene.kind, tuple(dataclasses.replace(o, prims=()) for o in scene.objects))


def _render_chunk(seed: int, stream: int, start: int, stop: int, size: int, save_as: list[str] | None) -> list:
    """Render images ``start..stop-1`` of a stream: (index, scene, boxes, areas, pixels) for each.

    With ``save_as`` (one path per image) the images are written as PNG and ``pixels`` is None.
    No captions here: worker processes then never import inflect (4 s each).
    """
    results = []
    for k, index in enumerate(range(start, stop)):
        rendered = generate_example(seed, stream, index, size)
        if save_as:
            rendered.image.save(save_as[k], format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        pixels = None if save_as else np.asarray(rendered.image)
        results.append((index, _light(rendered.scene), rendered.boxes, rendered.areas, pixels))
    return results


def _run_chunks(jobs: list[tuple], workers: int) -> list:
    """:func:`_render_chunk` over ``jobs`` (argument tuples), in a process pool if ``workers`` > 1; in order."""
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            chunks = [f.result() for f in [pool.submit(_render_chunk, *job) for job in jobs]]
    else:
        chunks = [_render_chunk(*job) for job in jobs]
    return [item for chunk in chunks for item in chunk]


def render_arrays(seed: int, stream: int, start: int, n: int, image_size: int = 128,
                  workers: int = 1) -> tuple[np.ndarray, np.ndarray, list[Scene]]:
    """Images ``start..start+n-1`` of a seed stream in memory (no files), in index order.

    Returns pixels uint8 [n, S, S, 3], labels uint8 [n, C] in {0, 1}, and the rendered scenes
    (for :func:`example_captions`). Used by the CLIP pretraining.
    """
    jobs = [(seed, stream, a, min(a + 500, start + n), image_size, None) for a in range(start, start + n, 500)]
    items = _run_chunks(jobs, workers)
    pixels = np.zeros((n, image_size, image_size, 3), np.uint8)
    labels = np.zeros((n, len(CLASSES)), np.uint8)
    for row, (_, scene, _, _, image) in enumerate(items):
        pixels[row] = image
        labels[row, scene.labels()] = 1
    return pixels, labels, [item[1] for item in items]


def generation_params(n_train: int, n_val: int, n_test: int, n_text_only: int, seed: int, image_size: int) -> dict:
    """The parameters that determine the dataset's bytes (what the manifest records and compares)."""
    if image_size < 32:
        raise UsageError(f"toy image_size must be at least 32, got {image_size}")
    if min(n_train, n_val, n_test, n_text_only) < 0:
        raise UsageError("toy split sizes must be >= 0")
    return {"format_version": FORMAT_VERSION, "n_train": int(n_train), "n_val": int(n_val), "n_test": int(n_test),
            "n_text_only": int(n_text_only), "seed": int(seed), "image_size": int(image_size)}


def _coco_files(records: list[dict], image_size: int) -> tuple[dict, dict]:
    """COCO instances and captions dicts for one split's records.

    Annotation and caption ids are ``image_id * 10 + k`` (k-th object or caption of the image: at most
    5 of each), unique across every file as COCO's are.
    """
    info = {"description": "bench toy world (procedural scenes, see bench/toy)", "version": str(FORMAT_VERSION)}
    images = [{"id": r["id"], "file_name": r["file_name"], "width": image_size, "height": image_size} for r in records]
    categories = [{"id": i + 1, "name": name, "supercategory": SUPERCATEGORY[name]} for i, name in enumerate(CLASSES)]
    instances = [{"id": r["id"] * 10 + k, "image_id": r["id"], "category_id": category_id, "bbox": box, "area": area,
                  "iscrowd": 0, "segmentation": []}
                 for r in records for k, (category_id, box, area) in enumerate(r["objects"])]
    captions = [{"id": r["id"] * 10 + k, "image_id": r["id"], "caption": text}
                for r in records for k, text in enumerate(r["captions"])]
    return ({"info": dict(info), "images": images, "annotations": instances, "categories": categories},
            {"info": dict(info), "images": images, "annotations": captions})


def _file_name(stem: str, image_id: int) -> str:
    return f"toy_{stem}_{image_id:012d}.png"


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False))


def default_workers(n_images: int) -> int:
    """Rendering processes: one per usable core, at most 8 and at most ``OMP_NUM_THREADS`` when set (the
    process's CPU budget: a `bench run --jobs` worker sets it to its share)."""
    if n_images < 400:  # starting worker processes costs more than it saves
        return 1
    budget = os.environ.get("OMP_NUM_THREADS", "")
    cap = int(budget) if budget.isdigit() and int(budget) > 0 else 8
    return max(1, min(len(os.sched_getaffinity(0)), 8, cap))


def _generate(out: Path, params: dict, workers: int) -> None:
    """Every file of the dataset, written under ``out``."""
    seed, size = params["seed"], params["image_size"]
    (out / "annotations").mkdir()
    jobs = []  # every split's chunks of 250 images go to one pool
    for split, (stream, stem, first_id) in SPLITS.items():
        (out / stem).mkdir()
        n = params[f"n_{split}"]
        jobs += [(seed, stream, a, min(a + 250, n), size,
                  [str(out / stem / _file_name(stem, first_id + i)) for i in range(a, min(a + 250, n))])
                 for a in range(0, n, 250)]
    items = iter(_run_chunks(jobs, workers))
    for split, (stream, stem, first_id) in SPLITS.items():
        records = []
        for index, scene, boxes, areas, _ in (next(items) for _ in range(params[f"n_{split}"])):
            objects = [(obj.label + 1, list(box), area) for obj, box, area in zip(scene.objects, boxes, areas)]
            records.append({"id": first_id + index, "file_name": _file_name(stem, first_id + index),
                            "objects": objects, "captions": example_captions(scene, seed, stream, index)})
        instances, captions = _coco_files(records, size)
        _write_json(out / "annotations" / f"instances_{stem}.json", instances)
        _write_json(out / "annotations" / f"captions_{stem}.json", captions)
    texts = text_only_captions(seed, params["n_text_only"])
    records = [{"id": TEXT_ONLY_FIRST_ID + i, "file_name": _file_name("textonly", TEXT_ONLY_FIRST_ID + i),
                "objects": [], "captions": [text]} for i, text in enumerate(texts)]
    _, captions = _coco_files(records, size)
    captions["info"]["description"] += "; caption-only corpus: these images were never rendered"
    _write_json(out / "annotations" / "captions_textonly.json", captions)
    _write_json(out / "toy_manifest.json", {"generator": "bench.toy.build", "params": params, "classes": list(CLASSES)})


def check_manifest(root: Path, params: dict) -> None:
    """Raise DataError unless ``root`` holds a toy dataset generated with exactly ``params``."""
    path = root / "toy_manifest.json"
    if not path.is_file():
        raise DataError(f"{root} exists but holds no toy dataset (no toy_manifest.json); "
                        "delete the folder or pass another data root")
    try:
        found = json.loads(path.read_text()).get("params", {})
    except json.JSONDecodeError as exc:
        raise DataError(f"corrupt toy manifest {path}: {exc}; delete {root} to regenerate it") from exc
    if found != params:
        changed = {k: (found.get(k), v) for k, v in params.items() if found.get(k) != v}
        detail = ", ".join(f"{k}: {old} on disk, {new} asked" for k, (old, new) in changed.items())
        raise DataError(f"the toy dataset in {root} was generated with other parameters ({detail}); "
                        "delete the folder to regenerate it or pass another data root")


def ensure_toy_dataset(root: str | Path, *, n_train: int = 4000, n_val: int = 1000, n_test: int = 1000,
                       n_text_only: int = 5000, seed: int = 0, image_size: int = 128,
                       workers: int | None = None) -> Path:
    """Generate the toy dataset under ``root`` unless it is already there; returns ``root``.

    An existing ``root`` must hold a dataset made with the same parameters (else DataError: the
    two are never mixed). ``workers`` (default: the CPUs available, at most 8) changes only the
    speed, never the bytes.
    """
    root = Path(root).expanduser()
    params = generation_params(n_train, n_val, n_test, n_text_only, seed, image_size)
    if root.exists() and not (root.is_dir() and not any(root.iterdir())):
        check_manifest(root, params)
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        start = time.perf_counter()
        n_images = n_train + n_val + n_test
        _generate(tmp, params, workers or default_workers(n_images))
        try:
            os.rename(tmp, root)  # atomic; also replaces an empty folder
        except OSError:
            if not (root / "toy_manifest.json").is_file():
                raise
            check_manifest(root, params)  # another process finished first: use its copy
        else:
            log.info("toy dataset: %d images generated in %.1f s -> %s", n_images, time.perf_counter() - start, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root

