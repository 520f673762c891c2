"""Tip-Adapter, Tip-Adapter-F and the linear probe (methods/tip_adapter.py, methods/linear_probe.py) and
the fit_features hook's data (bench/cell/fitdata.py): parameters, the cache arithmetic by hand, partial
labels, the probe against scikit-learn, the searches on validation data only, training."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.cell.fitdata import HOLDOUT_FRACTION, cached_training_features, validation_split
from bench.data.base import DataError, Split, apply_partial_labels, few_shot_indices
from bench.method import LabelledFeatures
from bench.methods._parts.val_map import mean_average_precision
from bench.methods.linear_probe import LinearProbe, fit_logistic
from bench.methods.tip_adapter import TipAdapter, TipAdapterF, search_grid

CLASSES = ["red", "green", "blue"]


def _labelled(feats, labels) -> LabelledFeatures:
    feats = np.asarray(feats, dtype=np.float32)
    return LabelledFeatures({"global": feats[None] if feats.ndim == 2 else feats}, np.asarray(labels, dtype=np.int8))


def _hand_tip(backbone, cls=TipAdapter, **kw):
    """A Tip-Adapter on 2-d features with hand-set text features (red = e1, green = e2, blue = (e1 + e2)/sqrt 2)."""
    method = cls(search=False, init_alpha=2.0, init_beta=3.0, **kw)
    method.build(backbone, CLASSES)
    method.text_features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    return method


def test_trainable_parameters_and_frozen_backbone(tiny_rn):
    train = _labelled(np.random.default_rng(0).normal(size=(5, 32)), [[1, -1, 0]] * 4 + [[0, -1, -1]])
    val = _labelled(np.random.default_rng(1).normal(size=(4, 32)), [[1, -1, 1], [-1, 1, 0], [1, 0, -1], [-1, 1, 1]])
    shapes = {}
    for cls in (TipAdapter, TipAdapterF, LinearProbe):
        method = cls(**({"epochs": 1} if cls is TipAdapterF else {}))
        method.build(tiny_rn, CLASSES)
        method.fit_features(train, val)
        shapes[cls.name] = {n: tuple(p.shape) for n, p in method.named_parameters() if p.requires_grad}
        assert all(not p.requires_grad for p in tiny_rn.model.parameters())
        assert all(not k.startswith(("model.", "_backbone")) for k in method.state_dict())
    # Tip-Adapter learns nothing; -F its keys (the 4 images with a known positive); the probe [C, D] + [C]
    assert shapes == {"tip_adapter": {}, "tip_adapter_f": {"cache_keys": (4, 32)},
                      "linear_probe": {"weight": (3, 32), "bias": (3,)}}


def test_tip_adapter_cache_and_logits_by_hand(tiny_rn):
    """keys: normalised mean of the views; values: known positives only;
    logits = 100 cos(x, text) + alpha exp(-beta (1 - cos(x, keys))) values."""
    views = [[[2.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 1.0]],  # view 1
             [[2.0, 0.0], [0.0, 3.0], [0.6, 0.8], [1.0, 1.0]]]  # view 2: the mean of image 2 is (0, 2)
    labels = [[1, 0, -1],  # red known, green unknown -> value row (1, 0, 0)
              [0, 1, 1],  # -> (0, 1, 1)
              [-1, 0, 1],  # -> (0, 0, 1)
              [0, -1, 0]]  # no known positive: not in the cache
    method = _hand_tip(tiny_rn)
    assert method.build_cache(_labelled(views, labels)) == 3
    assert torch.allclose(method.cache_keys, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]))
    assert method.cache_values.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    x = torch.tensor([[3.0, 4.0]])  # normalised: (0.6, 0.8); cosines to the keys 0.6, 0.8, 1.0
    out = method.logits({"global": x})
    a = [math.exp(-3.0 * (1 - c)) for c in (0.6, 0.8, 1.0)]  # beta 3
    cache = [a[0], a[1], a[1] + a[2]]
    clip = [100 * 0.6, 100 * 0.8, 100 * (0.36 + 0.64)]
    assert torch.allclose(out["cache"], torch.tensor([cache]), atol=1e-5)
    assert torch.allclose(out["clip"], torch.tensor([clip]), atol=1e-4)
    assert torch.allclose(out["score"], torch.tensor([[c + 2.0 * k for c, k in zip(clip, cache)]]), atol=1e-4)


def test_search_grid_is_the_references():
    # utils.py:103: i * (scale - 0.1) / steps + 0.1
    assert search_grid(7, 200)[:3] == pytest.approx([0.1, 0.1345, 0.169]) and len(search_grid(7, 200)) == 200
    assert search_grid(3, 20)[-1] == pytest.approx(19 * 2.9 / 20 + 0.1)


def test_alpha_beta_search_follows_the_data_it_is_given(tiny_rn):
    """The choice depends on the set searched (so the runner must hand it val, never test: see the CLI test)."""
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(30, 2))
    train = _labelled(keys, np.where(keys[:, :1] > 0, [[1, -1, -1]], [[-1, 1, -1]]))  # cache says: red iff x0 > 0
    chosen = []
    for flip in (False, True):  # a set where the cache is right, and one where it is wrong
        image = rng.normal(size=(40, 2))
        labels = np.where((image[:, :1] > 0) != flip, [[1, -1, -1]], [[-1, 1, -1]])
        method = TipAdapter(search_scale=(7, 3), search_step=(10, 5))
        method.build(tiny_rn, CLASSES)
        method.text_features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        method.build_cache(train)
        found = method.search_alpha_beta(_labelled(image, labels))
        chosen.append((found["alpha"], found["beta"]))
        grid = torch.tensor(search_grid(3, 5))[:, None, None]
        x = torch.nn.functional.normalize(torch.tensor(image, dtype=torch.float32), dim=-1)
        clip, cache = method.branch_logits(x, found["beta"])
        best = mean_average_precision(clip + grid * cache, torch.tensor(labels)).max()
        assert found["val_mAP"] == pytest.approx(float(best))  # no alpha at this beta does better
    assert chosen[0] != chosen[1]


def test_tip_adapter_chunked_cosines_give_the_same_search_and_fine_tuning(tiny_rn, monkeypatch):
    """A cache x validation set too large for one affinity matrix (COCO: ~1e9 cosines) is scored in row chunks,
    and the search holds the logits of a few betas at a time: the search, the fine-tuning's epoch choice and the
    validation mAPs equal those of one matrix and every beta at once."""
    import bench.methods.tip_adapter as tip

    rng = np.random.default_rng(7)
    feats = rng.normal(size=(1, 60, 2))
    labels = np.where(feats[0, :, :1] > 0, [[1, -1, 0]], [[-1, 1, -1]])
    val = _labelled(rng.normal(size=(1, 45, 2)), np.where(rng.random((45, 3)) < 0.4, 1, -1))
    runs, groups = [], []
    by_beta = TipAdapterF.cache_logits_by_beta
    monkeypatch.setattr(TipAdapterF, "cache_logits_by_beta",
                        lambda self, image, betas: groups.append(len(betas)) or by_beta(self, image, betas))
    # everything at once; then 7 validation rows per chunk of cosines and the logits of 3 betas held at once
    for elements, search in ((1 << 26, 1 << 27), (7 * 60, 45 * 3 * 3)):
        monkeypatch.setattr(tip, "AFFINITY_ELEMENTS", elements)
        monkeypatch.setattr(tip, "SEARCH_ELEMENTS", search)
        torch.manual_seed(0)
        method = _hand_tip(tiny_rn, TipAdapterF, epochs=3, lr=0.05, batch_size=16)
        method.search, method.search_scale, method.search_step = True, [7.0, 3.0], [10, 5]  # the grid search too
        groups.clear()
        runs.append(method.fit_features(_labelled(feats, labels), val))
    assert groups[-4:] == [3, 3, 3, 1]  # the 10 betas of the last search, 3 at a time
    for key in ("alpha", "beta", "best_epoch", "cache_entries"):
        assert runs[0][key] == runs[1][key]
    for key in ("val_mAP", "val_mAP_init", "val_mAP_clip"):
        assert runs[0][key] == pytest.approx(runs[1][key], abs=1e-9)
    np.testing.assert_allclose(runs[0]["epoch_val_mAP"], runs[1]["epoch_val_mAP"], atol=1e-9)


def test_tip_adapter_f_fine_tuning_lowers_the_loss(tiny_rn):
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(2, 48, 2))  # two cached views per image
    labels = np.where(feats[0, :, :1] * feats[0, :, 1:] > 0, [[1, -1, 0]], [[-1, 1, -1]])
    method = _hand_tip(tiny_rn, TipAdapterF, epochs=15, lr=0.05, batch_size=16)
    torch.manual_seed(0)
    method.build_cache(_labelled(feats, labels))
    before = method.cache_keys.detach().clone()
    history = method.fine_tune(_labelled(feats, labels), _labelled(feats[0], labels))
    losses = history["epoch_losses"]
    assert len(losses) == 15 and losses[-1] < 0.9 * losses[0], losses
    assert history["best_epoch"] >= 0 and not torch.equal(method.cache_keys.detach(), before)


def test_linear_probe_matches_scikit_learn_on_the_known_entries():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    labels = np.where(x @ rng.normal(size=(5, 3)) + rng.normal(size=(60, 3)) > 0, 1, -1)
    labels[rng.random(labels.shape) < 0.4] = 0  # unknown entries
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    weight, bias, trained = fit_logistic(torch.tensor(x), torch.tensor(labels), C=2.0, tol=1e-10)
    assert trained.all()
    for c in range(3):
        known = labels[:, c] != 0
        ref = LogisticRegression(C=2.0, tol=1e-10, max_iter=1000).fit(x[known], labels[known, c] == 1)
        assert np.allclose(weight[c].numpy(), ref.coef_[0], atol=1e-5)
        assert bias[c].item() == pytest.approx(ref.intercept_[0], abs=1e-5)
    # warm-started (L-BFGS from the fits at a smaller and a larger C; the C search starts each fit so): the same
    # minimiser, and an untrained class's row starts (and stays) at 0 whatever the start says
    for start_c in (0.1, 50.0):
        init = fit_logistic(torch.tensor(x), torch.tensor(labels), C=start_c, tol=1e-10)[:2]
        blind = labels.copy()
        blind[:, 2] = np.where(blind[:, 2] == 1, 0, blind[:, 2])  # class 2: no known positive
        warm_w, warm_b, warm_trained = fit_logistic(torch.tensor(x), torch.tensor(blind), C=2.0, tol=1e-10, init=init)
        assert warm_trained.tolist() == [True, True, False] and not warm_w[2].any() and warm_b[2] == 0
        assert torch.allclose(warm_w[:2], weight[:2], atol=1e-6) and torch.allclose(warm_b[:2], bias[:2], atol=1e-6)
    # an unknown entry is not in its class's fit: moving the image changes only the classes that know it
    moved = x.copy()
    row = int(np.flatnonzero((labels[:, 0] == 0) & (labels[:, 1] != 0))[0])
    moved[row] = -moved[row]
    weight2, bias2, _ = fit_logistic(torch.tensor(moved), torch.tensor(labels), C=2.0, tol=1e-10)
    assert torch.allclose(weight2[0], weight[0], atol=1e-7) and not torch.allclose(weight2[1], weight[1], atol=1e-3)


def test_linear_probe_search_and_untrained_class(tiny_rn):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 32))
    labels = np.where(x[:, :3] > 0, 1, -1)
    labels[:, 2] = -1  # blue: no known positive
    method = LinearProbe(max_iter=100)
    method.build(tiny_rn, CLASSES)
    grid = method.c_grid()
    assert len(grid) == 97 and grid[0] == pytest.approx(1e-6) and grid[8] == pytest.approx(1e-5)
    fit = method.fit_features(_labelled(x, labels), _labelled(x[:20], labels[:20]))
    assert fit["untrained_classes"] == ["blue"] and method.weight[2].abs().sum() == 0
    # CLIP A.3: the 7 starting values 10^-6, 10^-4, .., 10^6, then two new values per halving at most
    assert {f"{10.0 ** e:.3g}" for e in range(-6, 7, 2)} <= set(fit["tried"]) and len(fit["tried"]) <= 7 + 4 * 2
    assert fit["tried"][f"{fit['C']:.3g}"] == fit["val_mAP"] == max(fit["tried"].values())


def test_linear_probe_search_warm_starts_from_the_nearest_fitted_c(tiny_rn, monkeypatch):
    import bench.methods.linear_probe as linear_probe

    rng = np.random.default_rng(2)
    x = np.zeros((80, 32))  # the tiny backbone's width; 6 non-zero dimensions
    x[:, :6] = rng.normal(size=(80, 6))
    labels = np.where(x[:, :3] + rng.normal(size=(80, 3)) > 0, 1, -1)  # noisy: no C separates the data
    labels[rng.random(labels.shape) < 0.3] = 0
    calls, fit = [], linear_probe.fit_logistic

    def recording(image, labels, C, max_iter, tol, init=None):
        out = fit(image, labels, C, max_iter, tol, init)
        calls.append((C, init, out))
        return out

    monkeypatch.setattr(linear_probe, "fit_logistic", recording)
    runs = {}
    for warm in (True, False):
        calls.clear()
        method = LinearProbe(tol=1e-9, warm_start=warm)
        method.build(tiny_rn, CLASSES)
        runs[warm] = (method.fit_features(_labelled(x[:50], labels[:50]), _labelled(x[50:], labels[50:])),
                      method.weight.detach().clone(), method.bias.detach().clone(), list(calls))
    (warm, w_warm, b_warm, warm_calls), (cold, w_cold, b_cold, cold_calls) = runs[True], runs[False]
    assert all(init is None for _, init, _ in cold_calls)
    # CLIP_benchmark's search order, and each fit after the first starts from the nearest C already fitted in
    # log C (ties: the smaller C)
    assert [c for c, _, _ in warm_calls] == [c for c, _, _ in cold_calls] and warm_calls[0][1] is None
    for k, (c, init, _) in enumerate(warm_calls[1:], start=1):
        tried = [d for d, _, _ in warm_calls[:k]]
        nearest = min(tried, key=lambda d: (abs(math.log10(d) - math.log10(c)), d))
        source = [out for d, _, out in warm_calls[:k] if d == nearest][0]
        assert torch.equal(init[0], source[0]) and torch.equal(init[1], source[1])
    # the same minimisers: the same validation mAPs, the same C, the same final weights (within the tolerance)
    assert warm["C"] == cold["C"] and warm["tried"].keys() == cold["tried"].keys()
    assert all(warm["tried"][c] == pytest.approx(cold["tried"][c], abs=1e-9) for c in cold["tried"])
    assert torch.allclose(w_warm, w_cold, atol=1e-5) and torch.allclose(b_warm, b_cold, atol=1e-5)


def _fake_session(eval_split="test", n_val=10, overlap=False):
    rng = np.random.default_rng(0)

    def split(name, n):
        paths = [f"/{name}/{i}.jpg" for i in range(n)]
        if overlap and name == "val":
            paths[0] = "/test/0.jpg"
        return Split("fake", name, paths, rng.choice([-1, 1], (n, 3)).astype(np.int8), CLASSES)

    splits = {"val": split("val", n_val), "test": split("test", 6), "train": split("train", 20)}
    features = {name: {"global": rng.normal(size=(1, len(s), 4)).astype(np.float16)} for name, s in splits.items()}
    return SimpleNamespace(eval_split=eval_split, cfg={"sweep": {"shots": 2}}, split=splits.__getitem__,
                           dataset=SimpleNamespace(name="fake", has_split=lambda s: s in splits),
                           split_features=lambda backbone, s, kinds: features[s.split]), splits, features


@pytest.mark.parametrize("setting, ratio", [("partial", 0.5), ("fewshot", None)])
def test_validation_set_is_the_val_split_with_the_cells_budget(setting, ratio):
    session, splits, features = _fake_session()
    cell = SimpleNamespace(setting=setting, label_ratio=ratio, seed=3, shots=2 if setting == "fewshot" else None)
    train = _labelled(np.ones((20, 4)), splits["train"].labels)
    method = SimpleNamespace(name="m", image_features={"global": "global"})
    fit_train, val, about = validation_split(session, cell, method, None, train, np.arange(20))
    assert fit_train is train and about["validation"] == "val split" and about["n_train"] == 20
    if setting == "partial":
        rows = np.arange(10)
        assert np.array_equal(val.labels, apply_partial_labels(splits["val"], 0.5, 3).labels)
    else:
        rows = few_shot_indices(splits["val"].labels, 2, 3)
        assert np.array_equal(val.labels, splits["val"].labels[rows])
    assert np.array_equal(val.feats["global"], features["val"]["global"][:, rows].astype(np.float32))


def test_validation_set_is_a_holdout_when_val_is_evaluated_and_never_test_images():
    session, splits, _ = _fake_session(eval_split="val")
    cell = SimpleNamespace(setting="partial", label_ratio=0.5, seed=3)
    feats = np.arange(20, dtype=np.float32)[None, :, None].repeat(4, axis=2)  # row i's features are all i
    train = _labelled(feats, splits["train"].labels)
    method = SimpleNamespace(name="m", image_features={"global": "global"})
    fit_train, val, about = validation_split(session, cell, method, None, train, np.arange(20))
    assert about["validation"] == "holdout" and about["n_val"] == round(HOLDOUT_FRACTION * 20) == len(val.labels)
    fit_rows, val_rows = fit_train.feats["global"][0, :, 0], val.feats["global"][0, :, 0]
    assert sorted(np.r_[fit_rows, val_rows].tolist()) == list(range(20))  # a partition of the training images
    assert np.array_equal(val.labels, splits["train"].labels[val_rows.astype(int)])
    session, _, _ = _fake_session(overlap=True)
    with pytest.raises(DataError, match="both the val and the test split"):
        validation_split(session, cell, method, None, train, np.arange(20))
    session, _, _ = _fake_session(eval_split="val")
    with pytest.raises(DataError, match="no known positive label"):
        validation_split(session, cell, method, None, _labelled(feats, -np.ones((20, 3))), np.arange(20))
    with pytest.raises(ValueError, match="features.mode='cached'"):  # the online protocol has no cached features
        cached_training_features(method, SimpleNamespace(dataset=SimpleNamespace(labels=train.labels)))


def test_cells_through_the_cli_and_test_labels_never_reach_the_fit(tmp_path, tiny_rn_cfg):
    from bench.cli import main
    from bench.testing import write_coco, write_tiny_config

    root = tmp_path / "coco"
    write_coco(root, n_train=30, n_test=10)
    config = write_tiny_config(tmp_path / "tiny.py", {"type": "coco2014", "data_root": str(root)}, tiny_rn_cfg)
    options = ["tip_adapter.search_step=[20,5]", "tip_adapter_f.search_step=[20,5]", "tip_adapter_f.epochs=2",
               "linear_probe.max_iter=30", "sweep.shots=2"]
    records = []
    for run in ("a", "b"):
        if run == "b":  # new test labels: every image gets another image's annotations
            path = root / "annotations" / "instances_val2014.json"
            ann = json.loads(path.read_text())
            ids = [im["id"] for im in ann["images"]]
            for a in ann["annotations"]:
                a["image_id"] = ids[(ids.index(a["image_id"]) + 3) % len(ids)]
            path.write_text(json.dumps(ann))
        work = tmp_path / run
        assert main(["run", "--methods", "tip_adapter,tip_adapter_f,linear_probe", "--dataset", str(config),
                     "--settings", "partial,fewshot", "--ratios", "0.5", "--seeds", "1", "--work-dir", str(work),
                     "--quiet", "--cfg-options", *options]) == 0
        records.append({p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/*.json")
                        if not p.name.startswith("diagnostics__")})
    assert set(records[0]) == {f"{m}__{s}__s1" for m in ("tip_adapter", "tip_adapter_f", "linear_probe")
                               for s in ("partial_r0.5", "fewshot_k2")}  # the cell's K in its name
    for name, rec in records[0].items():
        fit = rec["fit"]
        assert rec["status"] == "ok" and fit["data"]["validation"] == "holdout" and fit["seconds"]["fit"] > 0
        assert fit["data"]["n_val"] == round(HOLDOUT_FRACTION * (fit["data"]["n_train"] + fit["data"]["n_val"]))
        assert rec["n_trainable_params"] == {"tip_adapter": 0, "tip_adapter_f": fit.get("cache_entries", 0) * 32,
                                             "linear_probe": 4 * 33}[rec["method"]]
        other = records[1][name]
        assert {k: v for k, v in other["fit"].items() if k != "seconds"} == {k: v for k, v in fit.items()
                                                                           if k != "seconds"}
    assert any(records[0][n]["mAP"] != records[1][n]["mAP"] for n in records[0])  # the test labels did change


def test_validation_map_ranks_a_grid_in_chunks_with_the_same_numbers_as_scikit_learn(monkeypatch):
    """mean_average_precision over a grid of score matrices [A, B, N, C] equals scikit-learn's mAP per matrix, and
    ranking it MAP_ELEMENTS entries at a time (memory) gives exactly the numbers of one pass."""
    from sklearn.metrics import average_precision_score

    import bench.methods._parts.val_map as val_map

    rng = np.random.default_rng(5)
    labels = torch.tensor(np.where(rng.random((30, 4)) < 0.3, 1, np.where(rng.random((30, 4)) < 0.2, 0, -1)))
    labels[0] = 1  # every class has a known positive
    scores = torch.tensor(rng.normal(size=(3, 5, 30, 4)).round(1))  # rounded: tied scores too
    whole = mean_average_precision(scores, labels)
    for a in range(3):
        for b in range(5):
            known = [(labels[:, c] != 0).numpy() for c in range(4)]
            expected = np.mean([average_precision_score(labels[known[c], c].numpy() == 1, scores[a, b][known[c], c])
                                for c in range(4)])
            assert float(whole[a, b]) == pytest.approx(100 * expected, abs=1e-9)
    monkeypatch.setattr(val_map, "MAP_ELEMENTS", 2 * 30 * 4)  # two matrices at a time: 8 passes over 15
    chunked = mean_average_precision(scores, labels)
    assert chunked.shape == (3, 5) and torch.equal(chunked, whole)
