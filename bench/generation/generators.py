"""Text-to-image generators (registered in GENERATORS) and the resumable on-disk generation cache.

A generator turns (prompt, seed) pairs into images. Every image is stored once under
``<root>/images/<key[:2]>/<key>.png`` where the key is a sha256 of the generator's identity
(pipeline, scheduler, steps, guidance, size, negative prompt, dtype) plus the prompt and the
seed; it is written to a temp file and renamed, so an interrupted generation resumes and
generates only what is missing, and a half-written image is never read back.

Generators:
  ``diffusers``  any diffusers text-to-image pipeline by hub id or local folder (Stable Diffusion
                 1.x/2.x, SDXL, LCM, turbo models) through ``AutoPipelineForText2Image``.
  ``toy``        the toy world's renderer (bench/toy/t2i.py): captions drawn in another style.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.errors import GeneratorError, UsageError
from bench.io import atomic_path, atomic_write_text, sha256_json
from bench.registry import GENERATORS

PNG_COMPRESS_LEVEL = 1


class Generator:
    """Base class: ``identity()`` names what changes the pixels, ``render(prompts, seeds)`` makes them."""

    name = ""

    def identity(self) -> dict:
        raise NotImplementedError

    def render(self, prompts: list[str], seeds: list[int]) -> list[Image.Image]:
        raise NotImplementedError

    def workers(self, n_images: int) -> int:
        """Processes to render ``n_images`` with (1: in this process; a GPU pipeline always renders here)."""
        return 1

    def unavailable(self, key: str = "generator") -> str | None:
        """Why this generator cannot render here, found without loading it (None: it can); ``key`` is the config
        key that sets it, for the message."""
        return None


@GENERATORS.register_module(name="toy")
class ToyGenerator(Generator):
    """The toy world's text-to-image renderer: the objects a caption names, in a visibly different
    style from the toy photos (``style="drawing"``: the synthetic-to-real gap Stable Diffusion images
    have to COCO), or in the photos' own style (``style="photo"``: an oracle generator with no domain
    gap, for the ablation that measures what the gap costs)."""

    name = "toy"

    def __init__(self, size: int = 128, style: str = "drawing"):
        if style not in ("drawing", "photo"):
            raise UsageError(f"toy generator style must be 'drawing' or 'photo', got {style!r}")
        self.size, self.style = size, style

    def identity(self) -> dict:
        from bench.toy import t2i

        return {"generator": "toy", "style": self.style, "size": self.size, "version": t2i.STYLE_VERSION}

    def workers(self, n_images: int) -> int:
        from bench.toy.build import default_workers

        return default_workers(n_images)  # CPU rendering: one process per core (>= 400 images)

    def render(self, prompts, seeds):
        from bench.toy.t2i import render_caption, render_caption_as_photo

        draw = render_caption if self.style == "drawing" else render_caption_as_photo
        return [draw(p, seed=s, size=self.size) for p, s in zip(prompts, seeds, strict=True)]


@GENERATORS.register_module(name="diffusers")
class DiffusersGenerator(Generator):
    """A diffusers text-to-image pipeline, by hub id or local folder.

    pipeline: e.g. "stable-diffusion-v1-5/stable-diffusion-v1-5", "stabilityai/sdxl-turbo", or a folder
        written by ``save_pretrained``. scheduler: a diffusers scheduler class name to swap in
        ("DPMSolverMultistepScheduler", "EulerDiscreteScheduler", "LCMScheduler"), None keeps the
        pipeline's own. dtype: "fp16"/"bf16" on CUDA ("fp32" on CPU). The safety checker is disabled
        (it blacks out images; the generated set is only used to train prompts) and recorded.
    """

    name = "diffusers"

    def __init__(self, pipeline: str, scheduler: str | None = "DPMSolverMultistepScheduler", steps: int = 25,
                 guidance: float = 7.5, height: int = 512, width: int = 512,
                 negative_prompt: str | None = "text, watermark", dtype: str = "fp16", device: str | None = None,
                 revision: str | None = None):
        self.pipeline, self.scheduler, self.steps, self.guidance = pipeline, scheduler, steps, guidance
        self.height, self.width, self.negative_prompt, self.revision = height, width, negative_prompt, revision
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype if self.device.startswith("cuda") else "fp32"
        self._pipe = None

    def identity(self) -> dict:
        source: dict = {"pipeline": self.pipeline, "revision": self.revision}
        folder = Path(self.pipeline).expanduser()
        if folder.is_dir():  # a local folder: its files' names, sizes and model_index.json identify it
            source = {"pipeline_files": sorted((str(p.relative_to(folder)), p.stat().st_size)
                                               for p in folder.rglob("*") if p.is_file()),
                      "model_index": (folder / "model_index.json").read_text()
                      if (folder / "model_index.json").is_file() else None}
        return {"generator": "diffusers", **source, "scheduler": self.scheduler, "steps": self.steps,
                "guidance": self.guidance, "height": self.height, "width": self.width,
                "negative_prompt": self.negative_prompt, "dtype": self.dtype, "safety_checker": None}

    def unavailable(self, key: str = "generator") -> str | None:
        """A local folder without ``model_index.json``, or (with ``HF_HUB_OFFLINE`` set) a hub id whose
        ``model_index.json`` is not in the local hub cache: the message says how to supply it."""
        folder = Path(self.pipeline).expanduser()
        if self.pipeline.startswith((".", "/", "~")) or folder.exists():
            if not (folder / "model_index.json").is_file():
                return (f"no diffusers pipeline in {folder} (expected model_index.json written by "
                        f"pipeline.save_pretrained; {key}.pipeline)")
            return None
        from huggingface_hub import constants, try_to_load_from_cache

        if constants.HF_HUB_OFFLINE and not isinstance(
                try_to_load_from_cache(self.pipeline, "model_index.json", revision=self.revision), str):
            return (f"diffusers pipeline {self.pipeline!r} is not in the local hub cache and HF_HUB_OFFLINE is set: "
                    f"download it where there is internet (huggingface-cli download {self.pipeline} --local-dir "
                    f"/path/sd) and pass the folder: --cfg-options {key}.pipeline=/path/sd")
        return None

    def load(self):
        if self._pipe is not None:
            return self._pipe
        import diffusers

        folder = Path(self.pipeline).expanduser()
        looks_local = self.pipeline.startswith((".", "/", "~")) or folder.exists()
        if looks_local and not (folder / "model_index.json").is_file():
            raise GeneratorError(f"no diffusers pipeline in {folder} (expected model_index.json written by "
                                 "pipeline.save_pretrained)")
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]
        source = str(folder) if looks_local else self.pipeline
        kwargs = {"dtype": dtype, "revision": self.revision}
        try:
            # no NSFW filter (it blacks out images): off for the pipelines that have one (SD 1.x/2.x),
            # decided from the pipeline's own model_index.json, not from its name
            if "safety_checker" in diffusers.DiffusionPipeline.load_config(source, revision=self.revision):
                kwargs.update(safety_checker=None, requires_safety_checker=False)
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            if looks_local:  # a folder that is there but does not load: nothing to download
                raise GeneratorError(
                    f"cannot load diffusers pipeline {self.pipeline!r} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:160]}); write the folder again with pipeline.save_pretrained or "
                    "huggingface-cli download ... --local-dir, or pass another one (t2ipal.generator.pipeline)"
                ) from exc
            raise GeneratorError(
                f"cannot load diffusers pipeline {self.pipeline!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}). Without internet, download it elsewhere "
                f"(huggingface-cli download {self.pipeline} --local-dir /path/sd) and pass the folder: "
                f"--cfg-options t2ipal.generator.pipeline=/path/sd") from exc
        if self.scheduler:
            scheduler_cls = getattr(diffusers, self.scheduler, None)
            if scheduler_cls is None:
                raise GeneratorError(f"unknown diffusers scheduler {self.scheduler!r}")
            pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe.to(self.device)
        return self._pipe

    @torch.no_grad()
    def render(self, prompts, seeds):
        pipe = self.load()
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]  # CPU RNG: same images on any GPU
        kwargs = dict(num_inference_steps=self.steps, guidance_scale=self.guidance, height=self.height,
                      width=self.width, generator=generators, output_type="pil")
        if self.negative_prompt and self.guidance > 1:
            kwargs["negative_prompt"] = [self.negative_prompt] * len(prompts)
        return pipe(list(prompts), **kwargs).images


def image_key(identity: dict, prompt: str, seed: int) -> str:
    return sha256_json({"identity": identity, "prompt": prompt, "seed": int(seed)})


def image_path(root: Path, key: str) -> Path:
    return Path(root) / "images" / key[:2] / f"{key}.png"


def generate_all(generator: Generator, prompts: list[str], seeds: list[int], root: str | Path,
                 batch_size: int = 8, progress: bool = True, rank: int = 0, world: int = 1) -> list[str]:
    """Paths of the images for every (prompt, seed), generating only those not cached yet.

    With ``world > 1`` this rank renders every world-th missing image (all ranks must call it with
    the same lists); the returned paths cover every pair once all ranks are done.
    """
    from tqdm import tqdm

    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt")
    root = Path(root)
    identity = generator.identity()
    paths = [image_path(root, image_key(identity, p, s)) for p, s in zip(prompts, seeds, strict=True)]
    # the split over ranks depends only on the list, never on what happens to be on disk at the time
    missing = [i for i in range(rank, len(paths), world) if not paths[i].is_file()]
    bar = tqdm(total=len(missing), desc=f"generating ({generator.name})", unit="img", disable=not progress,
               leave=False)
    jobs = [(generator, [prompts[i] for i in batch], [seeds[i] for i in batch], [paths[i] for i in batch])
            for batch in (missing[s:s + batch_size] for s in range(0, len(missing), batch_size))]
    workers = generator.workers(len(missing))
    if workers > 1:  # a CPU renderer (the toy one): one process per core; the bytes do not depend on it
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for done in pool.map(_render_and_save, jobs):
                bar.update(done)
    else:
        for job in jobs:
            bar.update(_render_and_save(job))
    bar.close()
    manifest = root / "generators" / f"{sha256_json(identity)}.json"
    if not manifest.is_file():
        atomic_write_text(manifest, json.dumps(identity, indent=1, sort_keys=True))
    return [str(p) for p in paths]


def _render_and_save(job: tuple) -> int:
    """Render one batch and write its images (in a worker process when the generator asks for them)."""
    generator, prompts, seeds, paths = job
    for image, path in zip(generator.render(prompts, seeds), paths, strict=True):
        save_image_atomically(image, path)
    return len(paths)


def render_and_save(items: list[tuple], batch_size: int = 8) -> int:
    """Render and write (generator, prompt, seed, path) items in this process, in batches of consecutive items
    of one generator; their count (``bench run --jobs`` shares a run's missing images out this way)."""
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        for generator in {id(item[0]): item[0] for item in batch}.values():
            mine = [item for item in batch if item[0] is generator]
            _render_and_save((generator, [m[1] for m in mine], [m[2] for m in mine], [Path(m[3]) for m in mine]))
    return len(items)


def save_image_atomically(image: Image.Image, path: Path) -> None:
    # zlib level 1: 4x faster to write than the default 6 for ~10% larger files (as the toy world's PNGs);
    # PNG is lossless, so the pixels, and every feature of them, are the same at any level
    with atomic_path(path, suffix=".png") as tmp:
        image.convert("RGB").save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def caption_seeds(n_captions: int, images_per_caption: int, base_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(caption index, seed) for every image to generate: ``images_per_caption`` seeds per caption,
    fixed by the caption's position and the copy number, so adding copies keeps the earlier ones."""
    caption_index = np.repeat(np.arange(n_captions), images_per_caption)
    copy = np.tile(np.arange(images_per_caption), n_captions)
    seeds = base_seed * 1_000_003 + caption_index * 64 + copy
    return caption_index, seeds
