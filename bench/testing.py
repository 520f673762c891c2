"""Toy parts for tests and examples (as mmengine's ``testing`` module and timm's tiny test models).

Tiny random-init open_clip models built from configs, and tiny datasets written in each real
on-disk format (COCO 2014, VOC2007, NUS-WIDE), so every real code path runs offline in seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from PIL import Image
from torch import nn

from bench.method import Method

TINY_RN = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 32, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}


def write_tiny_model(folder: str | Path, name: str = "tiny-rn", arch: dict | None = None, seed: int = 0) -> dict:
    """Write an open_clip model config json and a random-init checkpoint; return a backbone config dict."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{name}.json"
    config_path.write_text(json.dumps(arch or TINY_RN))
    open_clip.add_model_config(config_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    ckpt = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    return {"model": name, "pretrained": str(ckpt), "model_config": str(config_path)}


def _image(rng: np.random.Generator, present: list[str], size: int = 64) -> Image.Image:
    """A noisy image with one coloured square per present class (so labels are learnable)."""
    pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    for name in present:
        x, y = rng.integers(0, size - 16, 2)
        pixels[y:y + 16, x:x + 16] = COLOURS[name]
    return Image.fromarray(pixels)


def _scenes(n: int, classes: list[str], rng: np.random.Generator) -> list[list[str]]:
    scenes = []
    for _ in range(n):
        k = int(rng.integers(1, 3))
        scenes.append(sorted(rng.choice(classes, size=k, replace=False).tolist()))
    return scenes


def write_coco(root: str | Path, n_train: int = 12, n_test: int = 8, seed: int = 0,
               classes: tuple[str, ...] = ("red", "green", "blue", "yellow")) -> dict:
    """A tiny dataset in the MS-COCO 2014 layout; returns the scenes per split (class names per image).

    Category ids are non-contiguous and listed out of order, as in real COCO.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    cat_ids = {name: 10 * (i + 1) + 1 for i, name in enumerate(classes)}
    scenes = {}
    for split, n in (("train2014", n_train), ("val2014", n_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(exist_ok=True)
        split_scenes = _scenes(n, list(classes), rng)
        images, anns, caps = [], [], []
        for i, present in enumerate(split_scenes):
            image_id = 1000 + 7 * i
            file_name = f"COCO_{split}_{image_id:012d}.jpg"
            _image(rng, present).save(root / split / file_name, quality=95)
            images.append({"id": image_id, "file_name": file_name, "width": 64, "height": 64})
            for name in present:
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat_ids[name],
                             "bbox": [0, 0, 16, 16], "area": 256, "iscrowd": 0})
            caps.append({"id": len(caps) + 1, "image_id": image_id, "caption": "A picture of " + " and ".join(present)})
        categories = [{"id": cat_ids[n], "name": n, "supercategory": "colour"} for n in reversed(classes)]
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": categories}))
        (root / "annotations" / f"captions_{split}.json").write_text(
            json.dumps({"images": images, "annotations": caps}))
        scenes[split] = split_scenes
    return scenes


def write_tiny_config(path: str | Path, dataset: dict, backbone: dict, extra: str = "") -> Path:
    """A dataset sweep config for tests: the real default runtime, a tiny dataset and model."""
    from bench.config import CONFIG_DIR

    path = Path(path)
    bases = [str(CONFIG_DIR / "_base_" / "default_runtime.py"), str(CONFIG_DIR / "_base_" / "methods" / "zsclip.py")]
    path.write_text(
        f"_base_ = {bases!r}\n"
        f"dataset = {dataset!r}\nbackbone = {backbone!r}\n"
        "features = dict(batch_size=8, num_workers=0)\n"
        "sweep = dict(ratios=[0.5], seeds=[1])\n" + extra)
    return path


def write_voc(root: str | Path, seed: int = 0) -> dict[str, list[dict]]:
    """A tiny VOC2007 tree (``VOCdevkit/VOC2007`` layout) with difficult objects; returns the objects per image."""
    from bench.data.voc import VOC_CLASSES

    root = Path(root)
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    objects = {
        "000001": [("dog", 0), ("person", 0)],
        "000002": [("cat", 1)],  # difficult only
        "000003": [("car", 1), ("car", 0), ("bus", 0)],  # difficult and not: positive
        "000004": [("tvmonitor", 0), ("pottedplant", 1)],
        "000005": [("aeroplane", 0)],
    }
    for image_id, objs in objects.items():
        body = "".join(f"<object><name>{n}</name><pose>Left</pose><truncated>0</truncated>"
                       f"<difficult>{d}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"
                       f"</bndbox></object>" for n, d in objs)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>{body}</annotation>")
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
    (root / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n000003\n")
    (root / "ImageSets/Main/test.txt").write_text("000004\n000005\n")
    assert all(n in VOC_CLASSES for objs in objects.values() for n, _ in objs)
    return {k: [{"name": n, "difficult": d} for n, d in v] for k, v in objects.items()}


def write_nuswide(root: str | Path, concepts: tuple[str, ...] = ("sky", "water", "dog"), seed: int = 0,
                  tags: tuple[str, ...] = ()) -> dict:
    """A tiny NUS-WIDE tree (Concepts81.txt, ImageList, TrainTestLabels, Flickr); returns the label lists.

    ``tags``: also write NUS_WID_Tags (TagList1k.txt, AllTags1k.txt) and ImageList/Imagelist.txt (every
    image, test images first, in the official ``C:\\ImageData\\Flickr\\`` form); ``out[tag]["tags"]``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "ImageList").mkdir(parents=True, exist_ok=True)
    (root / "TrainTestLabels").mkdir(exist_ok=True)
    (root / "Concepts81.txt").write_text("\n".join(concepts) + "\n")
    out = {}
    for tag, n in (("Train", 4), ("Test", 3)):
        names = [f"actor\\{tag.lower()}_{i:04d}.jpg" for i in range(n)]
        # backslash paths and CRLF line ends, as the official lists ship
        (root / "ImageList" / f"{tag}Imagelist.txt").write_text("\r\n".join(names) + "\r\n")
        labels = rng.integers(0, 2, (n, len(concepts)))
        for c, concept in enumerate(concepts):
            (root / "TrainTestLabels" / f"Labels_{concept}_{tag}.txt").write_text(
                "".join(f"{v} \n" for v in labels[:, c]))
        for name in names:
            path = root / "Flickr" / name.replace("\\", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        out[tag] = {"images": names, "labels": labels, "tags": rng.integers(0, 2, (n, len(tags))) if tags else None}
    if tags:
        (root / "NUS_WID_Tags").mkdir(exist_ok=True)
        (root / "NUS_WID_Tags" / "TagList1k.txt").write_text("\n".join(tags) + "\n")
        order = ("Test", "Train")
        (root / "ImageList" / "Imagelist.txt").write_text(
            "".join(f"C:\\ImageData\\Flickr\\{name}\r\n" for tag in order for name in out[tag]["images"]))
        (root / "NUS_WID_Tags" / "AllTags1k.txt").write_text(
            "".join(" ".join(str(v) for v in row) + " \n" for tag in order for row in out[tag]["tags"]))
    return out


class ProbeMethod(Method):
    """A linear probe on the normalised global image feature, trained with BCE on known labels.

    Not a benchmark method: a small trainable plug-in the harness tests use to exercise training,
    resume, failures and plug-in loading. ``fail_at`` makes the loss NaN from that call on. The
    environment variable ``BENCH_PROBE_INTERRUPT_AT=n`` raises KeyboardInterrupt at the n-th loss
    call of the process (a simulated kill that leaves the config unchanged, so the rerun resumes).
    ``ProbeMethod.loss_calls`` counts loss calls in this process.
    """

    loss_calls = 0

    name = "probe"
    trains_on = "images"
    settings = ("partial", "fewshot")
    default_train = dict(epochs=3, batch_size=4, optimizer=dict(type="SGD", lr=0.5, momentum=0.9, weight_decay=0.0),
                         scheduler="cosine", warmup_epochs=0, warmup_lr=1e-5)

    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.fail_at = fail_at
        self.calls = 0

    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        self.head = nn.Linear(backbone.embed_dim, len(classnames))

    def logits(self, feats):
        return self.head(F.normalize(feats["global"], dim=-1))

    def loss(self, logits, targets):
        self.calls += 1
        ProbeMethod.loss_calls += 1
        if ProbeMethod.loss_calls == int(os.environ.get("BENCH_PROBE_INTERRUPT_AT", "0")):
            raise KeyboardInterrupt("simulated kill")
        known = targets != 0
        loss = F.binary_cross_entropy_with_logits(logits[known], (targets[known] > 0).float())
        return loss * float("nan") if self.fail_at is not None and self.calls >= self.fail_at else loss


def install_probe_plugin(folder: str | Path, entry_name: str = "probe") -> Path:
    """Make ``ProbeMethod`` an installed plug-in for any Python that puts ``folder`` on its path.

    Writes a minimal ``*.dist-info`` with a ``bench.methods`` entry point, which importlib.metadata
    finds on sys.path (used by subprocess tests; in-process tests can also call load_plugins(force=True)).
    """
    folder = Path(folder)
    dist = folder / "bench_probe-0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-probe\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[bench.methods]\n{entry_name} = bench.testing:ProbeMethod\n")
    return folder


def write_hf_clip_tokenizer(folder: str | Path) -> Path:
    """vocab.json + merges.txt of CLIP's BPE, made from open_clip's bundled vocabulary (no download).

    ``transformers.CLIPTokenizer.from_pretrained(folder, model_max_length=77)`` then tokenizes exactly
    as open_clip's SimpleTokenizer (up to padding: HF pads with EOT, open_clip with 0).
    """
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False),
                                       encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def write_tiny_diffusers(folder: str | Path, resolution: int = 32, seed: int = 0) -> Path:
    """A random-init Stable Diffusion pipeline built from configs and saved with ``save_pretrained``.

    UNet2DConditionModel, AutoencoderKL, a small CLIPTextModel with an offline tokenizer, and a DDIM
    scheduler: the same files a real SD 1.x folder has, ~16 MB, loadable by path offline.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(write_hf_clip_tokenizer(folder / "_tok"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))
    unet = UNet2DConditionModel(
        sample_size=resolution // 2, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=32,
        sample_size=resolution)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def train_steps(method: Method, feats: dict, targets, optimizer, steps: int) -> list[float]:
    """Run ``steps`` optimiser steps of a method on fixed features; the loss before each step."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = method.loss(method.logits(feats), targets)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def write_torchscript_checkpoint(state_dict: dict, path: str | Path) -> Path:
    """A TorchScript archive holding ``state_dict`` (plus OpenAI's ``input_resolution`` entry): the format
    of OpenAI's released CLIP files (``clip/clip.py`` loads them with ``torch.jit.load``)."""
    import torch

    root = nn.Module()
    for name, tensor in {**state_dict, "input_resolution": torch.tensor(64)}.items():
        *parents, leaf = name.split(".")
        module = root
        for part in parents:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_buffer(leaf, tensor.detach().clone())
    path = Path(path)
    torch.jit.save(torch.jit.script(root), str(path))
    return path


def namespaces_allowed() -> bool:
    """Whether this machine lets an unprivileged user make a user + mount namespace (``unshare``), where tests mount
    a small tmpfs (a real full disk) or a read-only bind mount."""
    import subprocess

    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
