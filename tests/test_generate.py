"""Generators: a tiny diffusers pipeline loaded by path, the toy renderer, and the resumable image cache."""

import numpy as np
import pytest
from PIL import Image

from bench.generation.generators import (
    DiffusersGenerator,
    Generator,
    GeneratorError,
    caption_seeds,
    generate_all,
    image_key,
    image_path,
)
from bench.testing import write_tiny_diffusers


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return write_tiny_diffusers(tmp_path_factory.mktemp("sd"), resolution=32)


def test_tiny_diffusers_pipeline_by_path(tiny_pipeline, tmp_path):
    gen = DiffusersGenerator(str(tiny_pipeline), scheduler="EulerDiscreteScheduler", steps=2, guidance=1.0,
                             height=32, width=32, dtype="fp16")
    assert gen.dtype == "fp32"  # fp16 only on CUDA
    images = gen.render(["a dog on a sofa", "two cats"], [1, 2])
    assert [im.size for im in images] == [(32, 32), (32, 32)]
    again = gen.render(["a dog on a sofa"], [1])[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(images[0]))  # same (prompt, seed): same pixels
    assert not np.array_equal(np.asarray(gen.render(["a dog on a sofa"], [3])[0]), np.asarray(images[0]))
    identity = gen.identity()
    assert identity["steps"] == 2 and identity["scheduler"] == "EulerDiscreteScheduler"
    assert any(name.startswith("unet/") for name, _ in identity["pipeline_files"])


def test_pipeline_errors_say_how_to_fix(tmp_path, monkeypatch):
    with pytest.raises(GeneratorError, match="no diffusers pipeline in .*expected model_index.json"):
        DiffusersGenerator(str(tmp_path)).load()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GeneratorError, match="t2ipal.generator.pipeline=/path/sd"):
        DiffusersGenerator("stable-diffusion-v1-5/stable-diffusion-v1-5", dtype="fp32").load()


class CountingGenerator(Generator):
    """Renders a flat colour from the seed; counts renders; can fail after n images (a simulated kill)."""

    name = "counting"

    def __init__(self, fail_after: int | None = None):
        self.rendered, self.fail_after = 0, fail_after

    def identity(self):
        return {"generator": "counting"}

    def render(self, prompts, seeds):
        if self.fail_after is not None and self.rendered >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.rendered += len(prompts)
        return [Image.new("RGB", (8, 8), (s % 256, len(p), 0)) for p, s in zip(prompts, seeds)]


def test_generation_cache_hits_and_resumes(tmp_path):
    prompts = [f"caption {i}" for i in range(10)]
    seeds = list(range(10))
    killed = CountingGenerator(fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        generate_all(killed, prompts, seeds, tmp_path, batch_size=2, progress=False)
    done = sorted(tmp_path.glob("images/*/*.png"))
    assert len(done) == 4 and not list(tmp_path.glob("images/*/.*tmp*"))  # nothing half-written stays
    resumed = CountingGenerator()
    paths = generate_all(resumed, prompts, seeds, tmp_path, batch_size=2, progress=False)
    assert resumed.rendered == 6  # only the missing images
    assert paths[3] == str(image_path(tmp_path, image_key({"generator": "counting"}, "caption 3", 3)))
    assert Image.open(paths[7]).getpixel((0, 0)) == (7, len("caption 7"), 0)
    hit = CountingGenerator()
    generate_all(hit, prompts, seeds, tmp_path, progress=False)
    assert hit.rendered == 0


def test_rank_sharded_generation_covers_everything_once(tmp_path):
    prompts, seeds = [f"p{i}" for i in range(7)], list(range(7))
    ranks = [CountingGenerator() for _ in range(3)]
    for rank, gen in enumerate(ranks):
        generate_all(gen, prompts, seeds, tmp_path, progress=False, rank=rank, world=3)
    assert [g.rendered for g in ranks] == [3, 2, 2]
    assert len(list(tmp_path.glob("images/*/*.png"))) == 7


def test_caption_seeds_stable_when_adding_copies():
    idx1, seeds1 = caption_seeds(3, 1)
    idx2, seeds2 = caption_seeds(3, 2)
    assert idx2.tolist() == [0, 0, 1, 1, 2, 2]
    assert set(seeds1.tolist()) <= set(seeds2.tolist())  # 2 images per caption keeps the first one
    assert len(set(seeds2.tolist())) == 6


def test_toy_rendering_in_worker_processes_gives_the_same_pixels(tmp_path, monkeypatch):
    from bench.generation.generators import ToyGenerator

    prompts = ["a red ball and two trees", "a house", "three fish near a car", "a star"] * 3
    seeds = list(range(len(prompts)))
    here = generate_all(ToyGenerator(size=48), prompts, seeds, tmp_path / "one", batch_size=2, progress=False)
    monkeypatch.setattr(ToyGenerator, "workers", lambda self, n: 2)
    pooled = generate_all(ToyGenerator(size=48), prompts, seeds, tmp_path / "two", batch_size=2, progress=False)
    for a, b in zip(here, pooled, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    direct = ToyGenerator(size=48).render(prompts[:1], seeds[:1])[0]
    np.testing.assert_array_equal(np.asarray(Image.open(pooled[0])), np.asarray(direct.convert("RGB")))
