"""Pretrain the toy CLIP contrastively on toy image-caption pairs (run once; the result is shipped).

    python -m bench.toy.pretrain --out bench/toy/model      # the defaults made the shipped checkpoint

Pairs come from the toy world's *pretrain* seed stream (never written into the benchmark dataset,
so no benchmark image is trained on); a held-out chunk of the same stream is scored every
``--eval-every`` steps by zero-shot mAP (prompts "a photo of a {name}.", score = cosine) and the
best weights are kept. Writes ``toy-clip.safetensors`` (the open_clip state_dict in fp16) and
``card.json`` (what was run and what it reached: held-out and toy-test zero-shot mAP against the
label-frequency baseline, and modality-gap statistics).

The run is a pure function of its arguments (and the torch thread count) unless ``--minutes``
cuts it short; the card says which.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.toy.build import PRETRAIN_STREAM, SPLITS, example_captions, render_arrays
from bench.toy.world import CLASSES

CONFIG_PATH = Path(__file__).resolve().parent / "model" / "toy-clip.json"
MODEL_NAME = "toy-clip"
PROMPT = "a photo of a {}."
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's default preprocessing for custom configs
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def make_pairs(seed: int, stream: int, start: int, n: int, workers: int = 1):
    """Images ``start..start+n-1`` of a toy seed stream: (pixels, labels, captions per image)."""
    pixels, labels, scenes = render_arrays(seed, stream, start, n, workers=workers)
    captions = [example_captions(scene, seed, stream, index) for index, scene in enumerate(scenes, start)]
    return pixels, labels, captions


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> normalised float [n, 3, H, W] (open_clip's transform, images already at size)."""
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def build_model(pretrained: str | None = None):
    """The toy CLIP (open_clip, config ``toy-clip.json``) and its tokenizer."""
    import open_clip

    open_clip.add_model_config(str(CONFIG_PATH))
    model, _, _ = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=pretrained)
    return model, open_clip.get_tokenizer(MODEL_NAME)


@torch.no_grad()
def encode_images(model, pixels: np.ndarray, batch: int = 250) -> torch.Tensor:
    """L2-normalised image embeddings [n, D] (model in eval mode)."""
    model.eval()
    feats = [model.encode_image(to_tensor(pixels[i:i + batch])) for i in range(0, len(pixels), batch)]
    return torch.nn.functional.normalize(torch.cat(feats), dim=-1)


@torch.no_grad()
def encode_texts(model, tokens: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """L2-normalised text embeddings [n, D] of tokenised texts (model in eval mode)."""
    model.eval()
    feats = [model.encode_text(tokens[i:i + batch]) for i in range(0, len(tokens), batch)]
    return torch.nn.functional.normalize(torch.cat(feats), dim=-1)


def mean_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """mAP in percent over the classes with a positive; ``labels`` in {0, 1} (bench.analysis.metrics' AP)."""
    from bench.analysis.metrics import average_precision

    return 100.0 * float(np.nanmean(average_precision(scores, np.where(labels == 1, 1, -1))))


def zero_shot_map(model, tokenizer, pixels: np.ndarray, labels: np.ndarray) -> float:
    """Zero-shot mAP: cosine of each image with "a photo of a {name}." per class."""
    text = encode_texts(model, tokenizer([PROMPT.format(name) for name in CLASSES]))
    return mean_ap((encode_images(model, pixels) @ text.T).numpy(), labels)


def frequency_baseline(labels: np.ndarray) -> float:
    """mAP of a constant scorer: the mean over classes (with a positive) of the class's positive rate."""
    rates = labels.mean(0)
    return 100.0 * float(rates[rates > 0].mean())


def modality_gap(image_feats: torch.Tensor, text_feats: torch.Tensor) -> dict:
    """Gap statistics of paired image and caption embeddings (row i goes with row i): bench.analysis.gaps.modality_gap
    under the key names and in the key order of the model card."""
    from bench.analysis.gaps import modality_gap as gap_statistics

    gap = gap_statistics(np.asarray(image_feats), np.asarray(text_feats))
    return {"paired_image_text_cosine": gap["mean_paired_cosine"],
            "mean_image_image_cosine": gap["mean_image_image_cosine"],
            "mean_text_text_cosine": gap["mean_text_text_cosine"],
            "centroid_distance": gap["centroid_distance"],
            "n_pairs": gap["n_pairs"]}


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def param_groups(model, weight_decay: float) -> list[dict]:
    """open_clip's training recipe: no weight decay on gains, biases, norms and the logit scale."""
    no_decay = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": weight_decay}]


def save_checkpoint(model, path: Path, used_tokens: set[int]) -> int:
    """fp16 safetensors of the state_dict; token-embedding rows of tokens never used are zeroed.

    Returns the number of token rows kept.
    """
    from safetensors.torch import save_file

    state = {k: (v.half() if v.is_floating_point() else v).contiguous().clone() for k, v in model.state_dict().items()}
    keep = torch.zeros(state["token_embedding.weight"].shape[0], dtype=torch.bool)
    keep[sorted(used_tokens)] = True
    state["token_embedding.weight"][~keep] = 0  # rows that no toy caption or prompt reaches: zeros compress
    save_file(state, str(path))
    return int(keep.sum())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.toy.pretrain", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/toy/model", help="folder for toy-clip.safetensors and card.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=600, help="optimisation steps (the LR schedule's length)")
    p.add_argument("--minutes", type=float, default=150.0, help="wall-clock cap; stops early (keeps the best) if hit")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--n-train", type=int, default=24000, help="pretraining pairs (images, each with 3-5 captions)")
    p.add_argument("--n-eval", type=int, default=1000, help="held-out images of the pretrain stream for selection")
    p.add_argument("--n-test", type=int, default=1000, help="toy test-split images scored once at the end")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--workers", type=int, default=2, help="processes rendering the pairs")
    return p.parse_args(argv)


def pretrain(args: argparse.Namespace, command: str) -> dict:
    """Run the pretraining; returns the card (also written to ``<out>/card.json``)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def say(msg: str) -> None:
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    say(f"rendering {args.n_train} + {args.n_eval} pretrain pairs and {args.n_test} toy test images")
    pixels, labels, captions = make_pairs(args.seed, PRETRAIN_STREAM, 0, args.n_train, workers=args.workers)
    eval_pixels, eval_labels, eval_captions = make_pairs(args.seed, PRETRAIN_STREAM, args.n_train, args.n_eval,
                                                         workers=args.workers)
    test_pixels, test_labels, _ = make_pairs(0, SPLITS["test"][0], 0, args.n_test, workers=args.workers)

    model, tokenizer = build_model()
    say("tokenising captions")
    flat = [c for caps in captions for c in caps]
    tokens = tokenizer(flat)
    first = np.cumsum([0] + [len(c) for c in captions])  # captions of image i: tokens[first[i]:first[i+1]]
    prompts = tokenizer([PROMPT.format(name) for name in CLASSES])
    eval_tokens = tokenizer([c for caps in eval_captions for c in caps])
    used_tokens = set(torch.unique(torch.cat([tokens, prompts, eval_tokens])).tolist())

    from open_clip import ClipLoss

    loss_fn = ClipLoss()
    optimizer = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    rng = np.random.default_rng([args.seed, 77])
    order, cursor = rng.permutation(args.n_train), 0
    history, best = [], {"step": 0, "map": -1.0, "state": None}
    stopped_early, step, train_start = False, 0, time.time()
    for step in range(1, args.steps + 1):
        if cursor + args.batch > args.n_train:
            order, cursor = rng.permutation(args.n_train), 0
        idx = np.sort(order[cursor:cursor + args.batch])
        cursor += args.batch
        caption_rows = first[idx] + rng.integers(0, first[idx + 1] - first[idx])  # one random caption per image
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step - 1, args.steps, args.lr, args.warmup)
        model.train()
        image_feats, text_feats, scale = model(to_tensor(pixels[idx]), tokens[caption_rows])
        loss = loss_fn(image_feats, text_feats, scale)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite contrastive loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 10 == 0:
            say(f"step {step}/{args.steps} loss {loss.item():.3f} logit_scale {model.logit_scale.exp().item():.1f}")
        out_of_time = (time.time() - t0) / 60 > args.minutes
        if step % args.eval_every == 0 or step == args.steps or out_of_time:
            held_out = zero_shot_map(model, tokenizer, eval_pixels, eval_labels)
            history.append({"step": step, "loss": round(loss.item(), 4), "held_out_map": round(held_out, 2)})
            say(f"step {step}: held-out zero-shot mAP {held_out:.2f} (best {max(best['map'], held_out):.2f})")
            if held_out > best["map"]:
                best = {"step": step, "map": held_out, "state": copy.deepcopy(model.state_dict())}
        if out_of_time:
            stopped_early = True
            say(f"time cap of {args.minutes} min reached at step {step}; keeping the best weights")
            break
    train_seconds = time.time() - train_start

    model.load_state_dict(best["state"])
    path = out / "toy-clip.safetensors"
    kept_rows = save_checkpoint(model, path, used_tokens)
    shipped, tokenizer = build_model(pretrained=str(path))  # score what users will load: the fp16 file
    eval_first = [caps[0] for caps in eval_captions]
    gap = modality_gap(encode_images(shipped, eval_pixels), encode_texts(shipped, tokenizer(eval_first)))
    card = {
        "model": MODEL_NAME, "config": "toy-clip.json", "checkpoint": path.name,
        "checkpoint_bytes": path.stat().st_size, "precision": "fp16",
        "token_rows_kept": kept_rows,
        "token_rows_note": "token-embedding rows of tokens that occur in no pretraining caption, held-out caption "
                           "or class prompt are zeroed so the file compresses; prompts built from other words reach "
                           "zero vectors for those words",
        "seed": args.seed, "steps_planned": args.steps, "steps_done": step, "best_step": best["step"],
        "stopped_by_time_cap": stopped_early, "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(time.time() - t0, 1), "torch_threads": args.threads,
        "data": {"pretrain_pairs": args.n_train, "captions_per_image": "3-5 (one drawn per step)",
                 "held_out_pairs": args.n_eval,
                 "stream": f"toy seed stream {PRETRAIN_STREAM} (pretrain; never in the benchmark dataset)",
                 "toy_test_images": f"{args.n_test} first images of the toy test split, seed 0"},
        "hyperparameters": {"batch": args.batch, "lr": args.lr, "weight_decay": args.weight_decay,
                            "warmup": args.warmup, "optimizer": "AdamW(0.9, 0.98, eps 1e-6)", "schedule": "cosine",
                            "loss": "open_clip ClipLoss"},
        "zero_shot": {"prompt": PROMPT,
                      "held_out_map": round(zero_shot_map(shipped, tokenizer, eval_pixels, eval_labels), 2),
                      "held_out_frequency_baseline": round(frequency_baseline(eval_labels), 2),
                      "toy_test_map": round(zero_shot_map(shipped, tokenizer, test_pixels, test_labels), 2),
                      "toy_test_frequency_baseline": round(frequency_baseline(test_labels), 2)},
        "modality_gap": {k: round(v, 4) if isinstance(v, float) else v for k, v in gap.items()},
        "history": history,
        "command": command,
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "cpu_count": os.cpu_count(),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    say(f"wrote {path} ({card['checkpoint_bytes'] / 1e6:.1f} MB) and card.json: {json.dumps(card['zero_shot'])}")
    return card


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m bench.toy.pretrain``, ``bench toy pretrain``); exit status 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    pretrain(parse_args(argv), command=" ".join(["python -m bench.toy.pretrain", *argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
