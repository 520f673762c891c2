"""Rates measured on this machine, turned into hours for a sweep (``bench run --dry-run --calibrate``).

About a minute on the current device, on the configured architectures with random weights (speed does not
depend on the weights, so no download is needed): the image encoder's images per second at the configured
resolution for the feature kinds the sweep stores, the text tower's prompts per second, one training step
of every method at the dataset's class count and the method's batch size (on random features of the real
shapes), and the toy generator's images per second. Methods that fit from features (Tip-Adapter, the
linear probe) and diffusers generators are not calibrated; the estimate says so.

Also :func:`prompts_per_forward`, which counts the prompts a method's forward pass sends through the text
tower by running it once on the stand-in backbone (no calibration needed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import torch

from bench.features.backbone import Backbone


@contextlib.contextmanager
def counting_prompts():
    """Count the rows every :class:`Backbone` (and subclass) sends through its text tower inside the block."""
    original, counted = Backbone.encode_embedded, [0]

    def encode_embedded(self, embeds, ids):
        counted[0] += int(embeds.shape[0])
        return original(self, embeds, ids)

    Backbone.encode_embedded = encode_embedded
    try:
        yield counted
    finally:
        Backbone.encode_embedded = original


def fake_features(method, backbone, batch: int) -> dict[str, torch.Tensor]:
    """Random image features of the method's kinds with ``backbone``'s shapes (via one small encoder pass)."""
    side = backbone.spec.image_size or _side(backbone)
    shapes = backbone.encode_images(torch.zeros(1, 3, side, side), tuple(set(method.image_features.values())))
    return {role: torch.randn(batch, *shapes[kind].shape[1:]) for role, kind in method.image_features.items()}


def _side(backbone) -> int:
    size = getattr(backbone.model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


class PromptCounter:
    """``prompts_per_forward(plan) -> (fixed, per image)``: the prompts one forward pass of the plan's method on a
    batch of B images sends through the text tower is ``fixed + per_image * B``, counted on the stand-in backbone
    at B = 1 and 2 once per method configuration (CoOp: C + 0 B; CoCoOp: 0 + C B). A method that fits from
    features (``fits_features``) is counted as having fixed text features (the built-in ones have)."""

    def __init__(self, classnames: list[str]):
        self.classnames, self._counts, self._backbone = classnames, {}, None

    def __call__(self, plan) -> tuple[int, int]:
        import json

        from bench.registry import construct

        key = (plan.method_cls, json.dumps(plan.kwargs, sort_keys=True, default=str))
        if key not in self._counts:
            method = construct(plan.method_cls, plan.kwargs, f"method {plan.cell.method!r}")
            self._counts[key] = (0, 0) if method.fits_features else self._count(method)
        return self._counts[key]

    def _count(self, method) -> tuple[int, int]:
        if self._backbone is None:
            from bench.features.spec import resolve_spec
            from bench.features.standin import load_standin

            self._backbone = load_standin(resolve_spec({"model": "standin:RN50", "image_size": 64}))
        method.build(self._backbone, list(self.classnames))
        counts = []
        for batch in (1, 2):
            feats = fake_features(method, self._backbone, batch)
            with counting_prompts() as counted, torch.no_grad():
                method.logits(feats)
            counts.append(counted[0])
        return counts[0] - (counts[1] - counts[0]), counts[1] - counts[0]


def _timed(fn, budget: float, at_most: int) -> float:
    """Seconds per call of ``fn`` after one warm-up call: repeated until ``budget`` seconds or ``at_most`` calls."""
    fn()
    start, calls = time.perf_counter(), 0
    while calls < at_most and (calls == 0 or time.perf_counter() - start < budget):
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls


def arch_key(spec, side: int) -> str:
    """How rates and costs name an architecture at an input side: weights do not change speed."""
    return f"{spec.model}@{side}"


def calibrate(cfg, costs, plans: dict, classnames: list[str], device: str = "cpu") -> dict:
    """Measured rates: ``encoder`` (architecture@side -> images/s), ``prompts_per_s`` and ``train_prompts_per_s``
    (architecture -> class prompts per second through the text tower: forward; forward and backward),
    ``step_s`` (method -> seconds per training step), ``generate_per_s`` (method -> images/s or None).

    A step is estimated as the prompts it encodes (counted, :class:`PromptCounter`) over the text tower's
    forward-and-backward rate, plus the rest of the step measured on the stand-in backbone (features of the
    real shapes): building a method on a real text tower takes minutes on a CPU (its template prompts), the
    text tower is what a step costs, and the measuring stays within about a minute."""
    from bench.config import to_plain
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_spec
    from bench.features.standin import is_standin, load_standin
    from bench.grid.cost import backbone_shape
    from bench.registry import construct

    rates: dict = {"encoder": {}, "prompts_per_s": {}, "train_prompts_per_s": {}, "step_s": {},
                   "generate_per_s": {}, "device": device}
    counter, standin = PromptCounter(classnames), None
    for method, plan in plans.items():
        spec = resolve_spec({**to_plain(cfg.backbone), **plan.backbone_overrides})
        spec = dataclasses.replace(spec, pretrained=None)  # the architecture, random weights: the same speed
        side = backbone_shape(spec)[1]
        key = arch_key(spec, side)
        if key not in rates["encoder"]:
            backbone = (load_standin if is_standin(spec.model) else load_backbone)(spec, device=device)
            kinds = sorted({k for c in costs for f in c.feature_sets if f["arch"] == key for k in f["kinds"]}
                           or {"global"})
            batch = 8 if device == "cpu" else int((cfg.get("features", {}) or {}).get("batch_size", 64))
            rates["encoder"][key], rates["prompts_per_s"][key], rates["train_prompts_per_s"][key] = \
                _backbone_rates(backbone, kinds, batch, classnames, side)
            del backbone
        instance = construct(plan.method_cls, plan.kwargs, f"method {method!r}")
        if instance.fits_features or not plan.train.get("epochs"):
            rates["step_s"][method] = None
        else:
            if standin is None:
                standin = load_standin(resolve_spec({"model": "standin:RN50", "image_size": 64}), device=device)
            batch = int(plan.train.get("batch_size", 32))
            fixed, per_image = counter(plan)
            rest = _step_seconds(instance, standin, classnames, batch)
            rates["step_s"][method] = rest + (fixed + per_image * batch) / rates["train_prompts_per_s"][key]
        if instance.trains_on == "generated":
            rates["generate_per_s"][method] = _generation_rate(instance)
    return rates


def _backbone_rates(backbone, kinds: list[str], batch: int, classnames: list[str], side: int
                    ) -> tuple[float, float, float]:
    """(images per second through the image encoder for ``kinds``, class prompts per second through the text
    tower forward, and forward + backward to its input embeddings, as a prompt learner's step runs it)."""
    pixels = torch.randn(batch, 3, side, side, device=backbone.device)
    images = batch / _timed(lambda: backbone.encode_images(pixels, kinds), 4, 3)
    prompts = [f"a photo of a {name}." for name in classnames]
    forward = len(prompts) / _timed(lambda: backbone.encode_text(prompts), 3, 3)
    ids = backbone.tokenize(prompts)
    embeds = backbone.token_embedding(ids).detach()

    def train_pass():
        x = embeds.clone().requires_grad_(True)
        with backbone.autocast():
            backbone.encode_embedded(x, ids).float().sum().backward()

    return images, forward, len(prompts) / _timed(train_pass, 3, 3)


def _step_seconds(method, backbone, classnames: list[str], batch: int) -> float:
    """Seconds of one training step (forward, loss, backward, SGD) on random features of the real shapes."""
    method.build(backbone, list(classnames))
    method.train()
    feats = fake_features(method, backbone, batch)
    targets = torch.where(torch.rand(batch, len(classnames)) < 0.05, 1, -1)
    params = [p for p in method.trainable_parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-6) if params else None

    def step():
        loss = method.loss(method.logits(feats), targets)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return _timed(step, 2, 3)


def _generation_rate(method) -> float | None:
    """Images per second of a toy generator (diffusers pipelines are not loaded to calibrate: None)."""
    from bench.config import to_plain
    from bench.registry import GENERATORS, build

    spec = to_plain(getattr(method, "generator", {}) or {})
    if spec.get("type") != "toy":
        return None
    generator = build(GENERATORS, spec)
    start = time.perf_counter()
    generator.render(["a photo of a dog and a cat."] * 4, [0, 1, 2, 3])
    return 4 / (time.perf_counter() - start)


def _phase_seconds(cost, rates: dict, per_s: float, uncalibrated: set, missing_gen: list) -> dict:
    """One dataset's seconds per phase: its counts over the rates."""
    extract = sum(s["images"] * s["views"] / rates["encoder"].get(s["arch"], float("nan")) for s in cost.feature_sets)
    train = 0.0
    for cell in cost.cells:
        step = rates["step_s"].get(cell["method"])
        if (cell["steps"] and step is None) or cell["fits_features"]:
            uncalibrated.add(cell["method"])
        train += cell["steps"] * (step or 0.0)
    evaluate = sum(cell["eval_prompt_passes"] for cell in cost.cells) / per_s  # features are cached
    generate = 0.0
    for g in cost.generated:
        rate = rates["generate_per_s"].get(g["method"])
        if rate:
            generate += g["images"] / rate
        else:
            missing_gen.append(g["method"])
    return {"extract_s": extract, "train_s": train, "evaluate_s": evaluate, "generate_s": generate,
            "total_s": extract + train + evaluate + generate}


def _hours_line(found: dict) -> str:
    return (f"feature extraction {found['extract_s'] / 3600:.1f} h, training {found['train_s'] / 3600:.1f} h, "
            f"evaluation {found['evaluate_s'] / 3600:.2f} h, generation {found['generate_s'] / 3600:.1f} h: "
            f"about {found['total_s'] / 3600:.1f} h")


def estimate_hours(costs, rates: dict) -> dict:
    """Seconds per phase from the counts and the rates, in total and per dataset (``per_dataset``), and the
    text the dry run prints."""
    uncalibrated, missing_gen = set(), []
    per_s = min(rates["prompts_per_s"].values()) if rates["prompts_per_s"] else float("nan")
    per_dataset = {c.dataset: _phase_seconds(c, rates, per_s, uncalibrated, missing_gen) for c in costs}
    total = {key: sum(found[key] for found in per_dataset.values())
             for key in ("extract_s", "train_s", "evaluate_s", "generate_s", "total_s")}
    text = [f"estimated on {rates['device']} (rates measured now, random weights):"]
    text += [f"  encoder {name}: {rate:,.1f} images/s" for name, rate in rates["encoder"].items()]
    text += [f"  text tower {name}: {rate:,.0f} prompts/s forward, {rates['train_prompts_per_s'].get(name, 0):,.0f} "
             "forward + backward" for name, rate in rates["prompts_per_s"].items()]
    text += [f"  training step {m}: {s:.3f} s (its prompts through the text tower + the rest of the step)"
             for m, s in rates["step_s"].items() if s is not None]
    if len(per_dataset) > 1:
        text += [f"  {dataset}: {_hours_line(found)}" for dataset, found in per_dataset.items()]
    text.append(f"  {'every dataset: ' if len(per_dataset) > 1 else ''}{_hours_line(total)}")
    if uncalibrated or missing_gen:
        text.append("  not included: " + "; ".join(
            ([f"fits from features ({', '.join(sorted(uncalibrated))})"] if uncalibrated else [])
            + ([f"generation with a diffusers pipeline ({', '.join(dict.fromkeys(missing_gen))})"]
               if missing_gen else [])))
    return {**total, "per_dataset": per_dataset, "text": "\n".join(text)}
