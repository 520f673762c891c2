"""Diagnostics records: modality gap against a direct computation, and a planted test-image leak is found."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import main
from bench.data.coco import COCO2014
from bench.generation.generators import Generator
from bench.registry import GENERATORS

CLASSES = ["red", "green", "blue", "yellow"]


class LeakyGenerator(Generator):
    """Returns a copy of one test image for prompts that mention "red" (a planted leak), noise otherwise."""

    name = "leaky"

    def __init__(self, source: str):
        self.source = source

    def identity(self):
        return {"generator": "leaky", "source": self.source}

    def render(self, prompts, seeds):
        rng = np.random.default_rng(0)
        return [Image.open(self.source).convert("RGB") if "red" in p
                else Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for p in prompts]


@pytest.fixture
def leaky():
    GENERATORS.register_module(name="leaky", module=LeakyGenerator, force=True)
    yield
    GENERATORS.module_dict.pop("leaky", None)


TOY_CLIP = {"model": "toy-clip", "pretrained": "builtin:toy/model/toy-clip.safetensors",
            "model_config": "builtin:toy/model/toy-clip.json"}


def test_diagnostics_records(tmp_path, tiny_config, tiny_coco, leaky):
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec

    # the shipped toy CLIP, not a random-init model (which maps every image to nearly the same feature)
    toy = load_backbone(resolve_spec(TOY_CLIP))
    test = COCO2014(str(tiny_coco[0])).load("test")
    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in CLASSES]}))
    work = tmp_path / "w"
    args = ["run", "--methods", "t2ipal", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet",
            "--settings", "zero-shot", "--cfg-options", "t2ipal.train.epochs=1", "t2ipal.template_captions=False",
            f"dataset.synonyms={synonyms}", "t2ipal.generator.type=leaky",
            f"t2ipal.generator.source={test.image_paths[3]}", *[f"backbone.{k}={v}" for k, v in TOY_CLIP.items()]]
    assert main([*args, "diagnostics.leak_threshold=2.0"]) == 0  # nothing reaches a cosine of 2
    folder = work / "tiny" / "records" / "coco2014"
    assert json.loads((folder / "diagnostics__t2ipal.json").read_text())["leakage"]["n_near_duplicates"] == 0
    assert main([*args, "diagnostics.leak_threshold=0.995"]) == 0  # the cell is done; its diagnostics are redone
    real = json.loads((folder / "diagnostics__real.json").read_text())
    gen = json.loads((folder / "diagnostics__t2ipal.json").read_text())
    assert real["kind"] == gen["kind"] == "diagnostics"

    # modality gap of the real test images and their first captions, computed directly with open_clip
    with torch.no_grad():
        img = toy.model.encode_image(torch.stack([toy.preprocess(Image.open(p)) for p in test.image_paths]))
        txt = toy.model.encode_text(toy.tokenize([c[0] for c in test.captions]))
    img = torch.nn.functional.normalize(img.half().float(), dim=-1).numpy()  # cached in fp16
    txt = torch.nn.functional.normalize(txt.half().float(), dim=-1).numpy()
    gap = real["modality_gap"]["real_images_vs_captions"]
    assert gap["n_pairs"] == len(test)
    assert gap["centroid_distance"] == pytest.approx(np.linalg.norm(img.mean(0) - txt.mean(0)), abs=1e-4)
    assert gap["mean_paired_cosine"] == pytest.approx((img * txt).sum(1).mean(), abs=1e-4)

    # the planted leak: every generated image of a "red" caption is test image 3
    n_red = sum("red" in c[0] for c in COCO2014(str(tiny_coco[0])).load("train").captions)
    leak = gen["leakage"]
    assert leak["n_generated"] == 12 and leak["n_near_duplicates"] == n_red > 0
    assert leak["max_similarity"] == pytest.approx(1.0, abs=1e-3)
    assert leak["near_duplicates"][0]["test"] == test.image_paths[3]
    assert gen["domain_gap"]["frechet_real_train_vs_real_test"] >= 0
    assert gen["modality_gap"]["generated_images_vs_captions"]["n_pairs"] == 12
