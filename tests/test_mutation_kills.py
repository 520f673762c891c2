"""Tests for what the mutation run (scripts/mutation.sh, README "Development") found unchecked: each asserts a value
computed independently (scikit-learn, a pure-Python reference, a hand-worked case, a pinned value that records
rely on), for a line whose change would have left every other test green."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from bench.analysis.metrics import top_k_prf, zsl_metrics
from bench.analysis.stats import pareto_front
from bench.data.base import (
    NEGATIVE,
    POSITIVE,
    UNKNOWN,
    DataError,
    Split,
    apply_partial_labels,
    few_shot_indices,
    partial_label_mask,
)

# ----- bench/analysis/metrics.py ----------------------------------------------------------------------------------

def test_top_k_prf_without_positives_or_images():
    """Recall of a set without positives is undefined (NaN), precision still counts the k false positives; an
    empty set has neither (DualCoOp's calc_F1 divides by zero there)."""
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4]])
    none_positive = top_k_prf(scores, np.full((2, 3), NEGATIVE), 2)
    assert none_positive["P"] == 0.0 and np.isnan(none_positive["R"]) and none_positive["F1"] == 0.0
    empty = top_k_prf(np.zeros((0, 3)), np.zeros((0, 3)), 2)
    assert np.isnan(empty["P"]) and np.isnan(empty["R"]) and empty["F1"] == 0.0


def test_zsl_block_per_class_ap_and_empty_classes_against_sklearn():
    rng = np.random.default_rng(3)
    scores = rng.random((12, 3))
    labels = np.where(rng.random((12, 3)) < 0.4, POSITIVE, NEGATIVE)
    labels[:, 2] = NEGATIVE  # no positive: excluded from mAP and listed
    labels[0, :2] = POSITIVE
    block = zsl_metrics(scores, labels, ["cat", "dog", "owl"], ks=(2,))
    expected = {c: 100.0 * average_precision_score(labels[:, i] == POSITIVE, scores[:, i])
                for i, c in enumerate(["cat", "dog"])}
    assert block["per_class_AP"]["owl"] is None and block["empty_classes"] == ["owl"]
    assert block["per_class_AP"]["cat"] == pytest.approx(expected["cat"])
    assert block["per_class_AP"]["dog"] == pytest.approx(expected["dog"])
    assert block["mAP"] == pytest.approx((expected["cat"] + expected["dog"]) / 2)
    assert (block["n_images"], block["n_classes"]) == (12, 3)


# ----- bench/analysis/stats.py ------------------------------------------------------------------------------------

def test_pareto_front_missing_values_and_ties_in_cost():
    # a record without a cost or an accuracy (None) is never optimal and dominates nothing
    np.testing.assert_array_equal(pareto_front([1.0, None, 2.0, 3.0], [0.5, 0.9, None, 0.7]),
                                  [True, False, False, True])
    # same cost: the more accurate one dominates
    np.testing.assert_array_equal(pareto_front([1.0, 1.0], [0.5, 0.6]), [False, True])
    for cost, accuracy in (([1.0, 2.0], [0.5]), ([[1.0, 2.0]], [[0.5, 0.6]])):
        with pytest.raises(ValueError, match=r"must be 1-D of the same length"):
            pareto_front(cost, accuracy)


# ----- bench/data/base.py -----------------------------------------------------------------------------------------

def test_partial_label_mask_is_pinned():
    """The mask of a seed is part of what a record means (same seed, same labels kept): a change of the draw (its
    seed words, its comparison) would silently change every partial-label cell. Pinned here."""
    np.testing.assert_array_equal(partial_label_mask((3, 4), 0.5, seed=1).astype(int),
                                  [[0, 0, 1, 1], [1, 0, 1, 1], [0, 1, 1, 1]])


def test_apply_partial_labels_keeps_int8_labels():
    labels = np.array([[1, -1, 1], [-1, 1, -1]], np.int8)
    split = Split("d", "train", ["a.jpg", "b.jpg"], labels, ["x", "y", "z"])
    out = apply_partial_labels(split, 0.5, seed=1).labels
    assert out.dtype == np.int8
    keep = partial_label_mask(labels.shape, 0.5, seed=1)
    np.testing.assert_array_equal(out, np.where(keep, labels, UNKNOWN))


def _few_shot_reference(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """The documented rule in plain Python: one seeded priority order of the images; for k = 1..shots, classes
    rarest first (ties by class index), each topped up to k positives with its best images not chosen yet."""
    positives = labels == POSITIVE
    priority = np.random.default_rng([seed, 16]).permutation(len(labels)).tolist()
    counts = positives.sum(0).tolist()
    classes = sorted(range(labels.shape[1]), key=lambda c: counts[c])  # stable: ties by index
    chosen: list[int] = []
    for k in range(1, shots + 1):
        for c in classes:
            have = sum(positives[i, c] for i in chosen)
            for i in priority:
                if have >= k:
                    break
                if positives[i, c] and i not in chosen:
                    chosen.append(i)
                    have += 1
    return np.array(sorted(chosen), dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_few_shot_indices_match_the_documented_rule_with_many_tied_classes(seed):
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random((300, 40)) < 0.05, POSITIVE, NEGATIVE)  # 40 classes: many equal counts
    for shots in (1, 2, 4):
        np.testing.assert_array_equal(few_shot_indices(labels, shots, seed), _few_shot_reference(labels, shots, seed))


def test_split_subset_and_errors_name_their_source():
    labels = np.array([[1, -1], [-1, -1], [-1, 1]], np.int8)
    split = Split("d", "test", ["a.jpg", "b.jpg", "c.jpg"], labels, ["x", "y"], captions=[["a"], ["b"], ["c"]],
                  image_ids=[10, 11, 12], source="/data/list.txt")
    part = split.subset([2, 0])
    assert part.image_paths == ["c.jpg", "a.jpg"] and part.image_ids == [12, 10] and part.captions == [["c"], ["a"]]
    np.testing.assert_array_equal(part.labels, labels[[2, 0]])
    assert part.source == "/data/list.txt" and part.classnames == ["x", "y"]
    with pytest.raises(DataError) as info:
        split.subset([1]).check_evaluable()
    assert str(info.value) == ("d/test: no image has a positive label, so there is nothing to evaluate (mAP "
                               "undefined); check the split's annotation files (/data/list.txt)")
    split.check_evaluable()  # one positive is enough
    with pytest.raises(DataError) as info:
        Split("d", "test", ["a.jpg"], labels, ["x", "y"], source="/data/list.txt")
    assert str(info.value) == ("d/test: label matrix (3, 2) does not match 1 images x 2 classes (read from "
                               "/data/list.txt)")


# ----- the methods' logits ----------------------------------------------------------------------------------------

def test_linear_probe_logits_by_hand():
    from bench.methods.linear_probe import LinearProbe

    probe = LinearProbe()
    probe.weight = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.5, -2.0]]))
    probe.bias = torch.nn.Parameter(torch.tensor([0.25, -1.0]))
    x = torch.tensor([[3.0, 4.0], [0.0, -2.0]], dtype=torch.float64)
    unit = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)  # [[0.6, 0.8], [0, -1]]
    expected = unit @ np.array([[1.0, 0.0], [0.5, -2.0]]).T + [0.25, -1.0]
    out = probe.logits({"global": x})
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-6)


def test_zsclip_logits_global_and_dense_by_hand():
    from bench.methods.zsclip import ZSCLIP

    text = np.array([[1.0, 0.0], [0.6, 0.8]])
    image = np.array([[3.0, 4.0], [1.0, 0.0]])
    dense = np.array([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], [[0.0, 1.0], [2.0, 0.0], [-1.0, 0.0]]])  # [B, P, D]

    def unit(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    scale = 2.5
    glob = scale * unit(image) @ text.T
    sims = scale * unit(dense) @ text.T  # [B, P, C]
    weights = np.exp(sims) / np.exp(sims).sum(axis=1, keepdims=True)  # softmax over the positions
    local = (weights * sims).sum(axis=1)
    for dense_weight in (0.0, 0.3):
        method = ZSCLIP(dense_weight=dense_weight)
        method.text_features, method.logit_scale = torch.tensor(text, dtype=torch.float32), scale
        out = method.logits({"global": torch.tensor(image, dtype=torch.float32),
                             "dense": torch.tensor(dense, dtype=torch.float32)})
        assert out["global"].dtype == torch.float32
        np.testing.assert_allclose(out["global"].numpy(), glob, rtol=1e-5)
        expected = (1 - dense_weight) * glob + dense_weight * local if dense_weight else glob
        np.testing.assert_allclose(out["score"].numpy(), expected, rtol=1e-5)
        if dense_weight:
            np.testing.assert_allclose(out["local"].numpy(), local, rtol=1e-5)


def test_clip_adapter_loss_uses_its_margin():
    from bench.methods.clip_adapter import CLIPAdapter

    logits = torch.tensor([[1.0, 1.2, 0.0]])
    targets = torch.tensor([[1, -1, -1]])
    # pairs (positive 0, negative 1) and (0, 2): max(0, m - 1.0 + 1.2) + max(0, m - 1.0 + 0.0)
    assert CLIPAdapter(ranking_margin=0.5).loss(logits, targets).item() == pytest.approx(0.7)
    assert CLIPAdapter(ranking_margin=1.0).loss(logits, targets).item() == pytest.approx(1.2)


def test_first_synonyms_fall_back_to_the_name(tmp_path):
    import json

    from bench.methods._parts.names import first_synonyms

    path = tmp_path / "words.json"
    path.write_text(json.dumps({"classes": [{"name": "cat", "synonyms": []},
                                            {"name": "dog", "synonyms": ["puppy", "dog"]}]}))
    assert first_synonyms(str(path), ["cat", "dog"]) == ["cat", "puppy"]


def test_a_fused_record_is_up_to_date_only_with_its_sources_as_they_are(tmp_path):
    """Derived (fused) records are recomputed when a source's config, data or file changed, or their own scores
    are gone; kept when everything matches (equal modification times included)."""
    import json
    import os

    from bench.grid.fusion import _up_to_date
    from bench.records import scores_path

    def write(name, record):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(record))
        return path

    rec_a = {"config_hash": "ha", "data_key": "da"}
    rec_b = {"config_hash": "hb", "data_key": "db"}
    path_a, path_b = write("a", rec_a), write("b", rec_b)
    sources = [{"path": str(path_a), "config_hash": "ha", "data_key": "da"},
               {"path": str(path_b), "config_hash": "hb", "data_key": "db"}]
    out = write("fused", {"status": "ok", "derived_from": sources})
    scores_path(out).write_bytes(b"scores")
    stamp = os.path.getmtime(path_b)
    for p in (path_a, path_b, out):
        os.utime(p, (stamp, stamp))  # same second: still up to date
    assert _up_to_date(out, path_a, rec_a, path_b, rec_b)
    assert not _up_to_date(out, path_a, {**rec_a, "data_key": "other"}, path_b, rec_b)  # source data changed
    assert not _up_to_date(out, path_a, rec_a, path_b, {**rec_b, "data_key": "other"})
    assert not _up_to_date(out, path_a, {**rec_a, "config_hash": "new"}, path_b, rec_b)
    assert not _up_to_date(out, path_b, rec_a, path_a, rec_b)  # the sources' order matters (a + b)
    os.utime(path_a, (stamp + 10, stamp + 10))  # a source rewritten after the fused record
    assert not _up_to_date(out, path_a, rec_a, path_b, rec_b)
    os.utime(out, (stamp + 20, stamp + 20))
    assert _up_to_date(out, path_a, rec_a, path_b, rec_b)
    scores_path(out).unlink()  # its scores are gone
    assert not _up_to_date(out, path_a, rec_a, path_b, rec_b)
    assert not _up_to_date(tmp_path / "none.json", path_a, rec_a, path_b, rec_b)  # no derived record yet
    assert not _up_to_date(out, path_a, {"data_key": "da"}, path_b, rec_b)  # a source without a config hash


def _asl_reference(logits, targets, gamma_neg=2.0, gamma_pos=1.0, clip=0.05, eps=1e-8) -> float:
    """Asymmetric loss written out per entry (Ridnik et al. 2021, DualCoOp utils/asymmetric_loss.py): -log(p) *
    (1 - p)^gamma_pos for a positive, -log(p_neg) * (1 - p_neg)^gamma_neg for a negative, where p_neg = min(1 - p +
    clip, 1); probabilities clamped at eps; unknown entries left out; summed."""
    total = 0.0
    for x, t in zip(np.ravel(logits), np.ravel(targets)):
        if t == 0:
            continue
        p = 1.0 / (1.0 + np.exp(-x))
        if t > 0:
            total += -np.log(max(p, eps)) * (1.0 - p) ** gamma_pos
        else:
            q = min(1.0 - p + clip, 1.0) if clip else 1.0 - p
            total += -np.log(max(q, eps)) * (1.0 - q) ** gamma_neg
    return total


@pytest.mark.parametrize("kwargs", [{}, {"gamma_neg": 2.0, "gamma_pos": 0.0}, {"gamma_neg": 1.0, "gamma_pos": 0.0},
                                    {"gamma_neg": 0.0, "gamma_pos": 1.0}, {"clip": None}, {"clip": 0.2, "eps": 0.3}])
def test_asymmetric_loss_against_the_formula(kwargs):
    from bench.methods._parts.losses import asymmetric_loss

    logits = torch.tensor([[0.0, 2.0, -3.0, 1.0], [-1.0, 0.5, 4.0, -6.0]], dtype=torch.float64)
    targets = torch.tensor([[1, -1, 1, 0], [-1, 1, -1, 1]])
    assert asymmetric_loss(logits, targets, **kwargs).item() == pytest.approx(
        _asl_reference(logits.numpy(), targets.numpy(), **kwargs), rel=1e-9)


def test_dualcoop_loss_passes_its_own_asl_settings():
    from bench.methods.dualcoop import DualCoOp

    logits = torch.tensor([[0.0, 2.0, -3.0], [-1.0, 0.5, -4.0]])
    targets = torch.tensor([[1, -1, 1], [-1, 1, 1]])
    method = DualCoOp(loss_w=0.5, gamma_neg=3.0, gamma_pos=0.5, clip=0.1, eps=0.2)
    expected = 0.5 * _asl_reference(logits.numpy(), targets.numpy(), gamma_neg=3.0, gamma_pos=0.5, clip=0.1, eps=0.2)
    assert method.loss({"score": logits}, targets).item() == pytest.approx(expected, rel=1e-6)


def test_taidpt_loss_uses_its_margin_on_both_branches():
    from bench.methods.taidpt import TaIDPT

    glob, local = torch.tensor([[1.0, 1.2, 0.0]]), torch.tensor([[0.0, 0.3, 0.1]])
    targets = torch.tensor([[1, -1, -1]])
    # margin 0.5: global 0.7 + 0.0, local (0.5 + 0.3) + (0.5 + 0.1)
    assert TaIDPT(ranking_margin=0.5).loss({"global": glob, "local": local}, targets).item() == pytest.approx(0.7 + 1.4)


# ----- bench/grid/fusion.py ---------------------------------------------------------------------------------------

def _fusion_record(folder, stem, method, setting, ratio, seed, scores, *, shots=None, status="ok"):
    import json
    from types import SimpleNamespace

    from bench.records import save_scores

    labels = np.array([[1, -1], [-1, 1], [1, -1]], np.int8)
    path = folder / f"{stem}.json"
    save_scores(path, {"score": scores}, SimpleNamespace(labels=labels, image_ids=[7, 8, 9]))
    path.write_text(json.dumps({
        "status": status, "method": method, "dataset": "coco2014", "setting": setting, "label_ratio": ratio,
        "shots": shots, "seed": seed, "config_hash": f"hash-{stem}", "mAP": 50.0 if status == "ok" else None,
        "per_class_AP": {"cat": 50.0, "dog": 50.0}, "backbone": {"spec": {"model": "RN50", "pretrained": "openai"}}}))
    return path


def test_fuse_sweep_pairs_seeds_few_shot_cells_force_and_skips(tmp_path):
    import json

    from bench.grid.fusion import FusionSpec, fuse_sweep

    folder = tmp_path / "records" / "coco2014"
    folder.mkdir(parents=True)
    a_scores, b_scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([[0.0, 9.0], [5.0, 0.0], [9.0, 5.0]])
    for seed in (1, 2):
        _fusion_record(folder, f"taidpt__zero-shot__s{seed}", "taidpt", "zero-shot", None, seed, a_scores * seed)
    (folder / "dualcoop__partial_r0.1__s1.json").write_text("{ cut short")  # sorts first: skipped, not the end
    (folder / "dualcoop__partial_r0.2__s1 copy.json").write_text("{}")  # not a runner's name: skipped
    _fusion_record(folder, "dualcoop__partial_r0.3__s1", "dualcoop", "partial", 0.3, 1, b_scores, status="failed")
    _fusion_record(folder, "dualcoop__partial_r0.5__s2", "dualcoop", "partial", 0.5, 2, b_scores)
    written = fuse_sweep(tmp_path, "coco2014")  # the default spec: TaI-DPT + DualCoOp at 0.9
    assert written == [folder / "taidpt+dualcoop__partial_r0.5__s2.json"]  # the failed cell is not fused
    fused = json.loads(written[0].read_text())
    assert fused["method"] == "taidpt+dualcoop" and fused["fusion"]["pairing"] == "same seed"
    assert fused["derived_from"][0]["path"] == str(folder / "taidpt__zero-shot__s2.json")  # seed 2 with seed 2
    before = written[0].stat().st_mtime_ns
    fuse_sweep(tmp_path, "coco2014", force=True)  # forced: rewritten although up to date
    assert written[0].stat().st_mtime_ns != before

    for k in (1, 4):  # few-shot cells fuse per K
        _fusion_record(folder, f"dualcoop__fewshot_k{k}__s1", "dualcoop", "fewshot", None, 1, b_scores, shots=k)
    shots = fuse_sweep(tmp_path, "coco2014", FusionSpec(setting_b="fewshot", name="tai+dual"))
    assert sorted(p.name for p in shots) == ["tai+dual__fewshot_k1__s1.json", "tai+dual__fewshot_k4__s1.json"]
    assert json.loads((folder / "tai+dual__fewshot_k4__s1.json").read_text())["shots"] == 4


def test_fuse_records_names_what_it_cannot_fuse(tmp_path):
    import json

    from bench.errors import RecordError
    from bench.grid.fusion import fuse_records
    from bench.records import scores_path

    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    a = _fusion_record(tmp_path, "a", "taidpt", "zero-shot", None, 1, scores)
    b = _fusion_record(tmp_path, "b", "dualcoop", "partial", 0.5, 1, scores)
    out = fuse_records(a, b, 0.5, tmp_path / "fused.json", "f", pairing="first seed of taidpt (1)")
    assert json.loads(out.read_text())["fusion"]["pairing"] == "first seed of taidpt (1)"
    failed = _fusion_record(tmp_path, "c", "dualcoop", "partial", 0.5, 1, scores, status="failed")
    with pytest.raises(RecordError) as info:
        fuse_records(a, failed, 0.5, tmp_path / "x.json", "f")
    assert str(info.value) == f"record {failed} has status 'failed'; only finished ('ok') cells fuse"
    scores_path(b).unlink()
    with pytest.raises(RecordError) as info:
        fuse_records(a, b, 0.5, tmp_path / "x.json", "f")
    assert str(info.value) == (f"no saved test scores beside {b} (expected {scores_path(b)}); re-run that cell with "
                               "--force to write them")
    b.write_text("{ cut")
    with pytest.raises(RecordError) as info:
        fuse_records(a, b, 0.5, tmp_path / "x.json", "f")
    assert str(info.value).startswith(f"cannot read record {b}: Expecting property name enclosed in double quotes")


def test_split_refusals_say_what_and_where():
    from bench.data.base import repeated_values, require_dir, require_file

    assert repeated_values([3, 1, 3, 2, 1, 3]) == [3, 1]
    labels = np.ones((14, 1), np.int8)
    ids = list(range(12)) + [0, 1]  # ids 0 and 1 twice
    with pytest.raises(DataError) as info:
        Split("d", "train", [f"{i}.jpg" for i in range(14)], labels, ["x"], image_ids=ids, source="/d/list.txt")
    assert str(info.value) == ("d/train: the split lists the same image id more than once: 0, 1; remove the repeated "
                               "entries from /d/list.txt")
    paths = [f"{i}.jpg" for i in range(12)] + ["0.jpg", "1.jpg"]  # the same files twice, no source known
    with pytest.raises(DataError) as info:
        Split("d", "train", paths, labels, ["x"])
    assert str(info.value) == ("d/train: the split lists the same image file more than once: 0.jpg, 1.jpg; remove "
                               "the repeated entries")
    many = [f"{i}.jpg" for i in range(12)] * 2  # 12 repeated files: ten shown, the rest counted
    with pytest.raises(DataError) as info:
        Split("d", "train", many, np.ones((24, 1), np.int8), ["x"])
    assert str(info.value) == ("d/train: the split lists the same image file more than once: "
                               + ", ".join(f"{i}.jpg" for i in range(10)) + " (+2 more); remove the repeated entries")
    for source, tail in (("", ""), ("/d/empty.txt", " /d/empty.txt")):
        with pytest.raises(DataError) as info:
            Split("d", "test", [], np.zeros((0, 1), np.int8), ["x"], source=source)
        assert str(info.value) == f"d/test: the split has no images; check its image list / annotation file{tail}"
    with pytest.raises(DataError) as info:
        require_file("/nowhere/file.json", "caption file")
    assert str(info.value) == "missing caption file: /nowhere/file.json"
    with pytest.raises(DataError) as info:
        require_dir("/nowhere", "data root", "pass --data-root")
    assert str(info.value) == "missing data root: /nowhere (pass --data-root)"
    with pytest.raises(DataError) as info:
        require_dir("/nowhere", "data root")
    assert str(info.value) == "missing data root: /nowhere"


def test_multilabel_metrics_default_names_all_empty_and_f1_arguments():
    from bench.analysis.metrics import f1_scores, multilabel_metrics

    scores, labels = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1, -1], [-1, 1]])
    assert list(multilabel_metrics(scores, labels)["per_class_AP"]) == ["0", "1"]  # no class names: indices
    empty = multilabel_metrics(scores, np.full((2, 2), NEGATIVE))
    assert np.isnan(empty["mAP"]) and empty["empty_classes"] == ["0", "1"]
    for kwargs in ({}, {"top_k": 1, "threshold": 0.5}):
        with pytest.raises(ValueError, match="give exactly one of top_k or threshold"):
            f1_scores(scores, labels, **kwargs)


@pytest.mark.parametrize("objective", ["ranking", "asl"])
def test_coop_loss_uses_its_own_settings(objective):
    from bench.methods.coop import CoOp

    logits = torch.tensor([[1.0, 1.2, -2.0], [0.5, -1.0, 3.0]])
    targets = torch.tensor([[1, -1, -1], [-1, 1, 1]])
    method = CoOp(objective=objective, loss_w=0.5, ranking_margin=0.5, gamma_neg=3.0, gamma_pos=0.5, clip=0.1, eps=0.2)
    if objective == "ranking":
        # image 0, positive 0 vs negatives 1, 2: max(0, 0.5 - 1.0 + 1.2) + max(0, 0.5 - 1.0 - 2.0) = 0.7
        # image 1, positives 1, 2 vs negative 0: max(0, 0.5 + 1.0 + 0.5) + max(0, 0.5 - 3.0 + 0.5) = 2.0
        expected = 0.5 * (0.7 + 2.0) / 2  # loss_w x the batch mean
    else:
        expected = 0.5 * _asl_reference(logits.numpy(), targets.numpy(), gamma_neg=3.0, gamma_pos=0.5, clip=0.1,
                                        eps=0.2)
    assert method.loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_clip_lora_loss_uses_its_margin():
    from bench.methods.clip_lora import CLIPLoRA

    logits, targets = torch.tensor([[1.0, 1.2, 0.0]]), torch.tensor([[1, -1, -1]])
    assert CLIPLoRA(ranking_margin=0.5).loss(logits, targets).item() == pytest.approx(0.7)


def test_tip_adapter_logits_by_hand():
    from bench.methods.tip_adapter import TipAdapter

    method = TipAdapter(clip_scale=10.0)
    method.text_features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    method.cache_keys = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    method.cache_values = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    method.alpha, method.beta = 2.0, 3.0
    x = np.array([[3.0, 4.0], [0.0, 2.0]])
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # each image on its own: [[0.6, 0.8], [0, 1]]
    clip = 10.0 * unit @ np.eye(2)
    cache = np.exp(-3.0 * (1.0 - unit @ np.array([[0.6, 0.8], [1.0, 0.0]]).T)) @ np.eye(2)
    out = method.logits({"global": torch.tensor(x, dtype=torch.float32)})
    np.testing.assert_allclose(out["clip"].numpy(), clip, rtol=1e-6)
    np.testing.assert_allclose(out["score"].numpy(), clip + 2.0 * cache, rtol=1e-6)


def test_prompt_learner_prompts_names_with_spaces_and_refuses_new_names_with_csc(tiny_rn):
    from bench.errors import UsageError
    from bench.methods._parts.prompt import PromptLearner

    learner = PromptLearner(tiny_rn, ["cat"], n_ctx=2, ctx_init=None)
    learner.set_classnames(["traffic_light", "dog"])
    expected = tiny_rn.tokenize([f"{learner.prefix_words} traffic light.", f"{learner.prefix_words} dog."])
    assert torch.equal(learner.ids, expected)
    with pytest.raises(UsageError) as info:
        PromptLearner(tiny_rn, ["cat"], n_ctx=2, csc=True).set_classnames(["dog"])
    assert str(info.value) == "class-specific contexts (csc=True) cannot prompt classes they were not built for"


def test_f1_scores_hand_worked_edges():
    """DualCoOp's CP/CR/CF1 and OP/OR/OF1 on cases worked by hand: a class never predicted (precision 0, still in
    the mean), a class without positives, a score exactly at the threshold (not predicted), one prediction and one
    positive overall, nothing predicted at all."""
    from bench.analysis.metrics import f1_scores

    scores = np.array([[0.5, 0.9, 0.1], [0.2, 0.7, 0.3]])
    labels = np.array([[1, -1, -1], [-1, 1, -1]])
    # > 0.5 predicts class 1 in both rows. Class 0: tp 0, 0 predicted, 1 positive -> P 0, R 0. Class 1: tp 1 of 2
    # predicted, 1 positive -> P 1/2, R 1. Class 2: nothing -> 0, 0. CP 1/6, CR 1/3, CF1 2/9; OP = OR = OF1 = 1/2
    out = f1_scores(scores, labels, threshold=0.5)
    expected = {"CP": 100 / 6, "CR": 100 / 3, "CF1": 200 / 9, "OP": 50.0, "OR": 50.0, "OF1": 50.0}
    assert out == pytest.approx(expected)
    # > 0.8: one prediction (row 0, class 1), now the one positive: OP = OR = 1 (not halved), CP = CR = 1/3
    one = f1_scores(scores, np.array([[-1, 1, -1], [-1, -1, -1]]), threshold=0.8)
    assert one == pytest.approx({"CP": 100 / 3, "CR": 100 / 3, "CF1": 100 / 3, "OP": 100.0, "OR": 100.0,
                                 "OF1": 100.0})
    nothing = f1_scores(scores, labels, threshold=0.95)  # no prediction: every F1 is 0, not NaN or 1
    assert nothing == {"CP": 0.0, "CR": 0.0, "CF1": 0.0, "OP": 0.0, "OR": 0.0, "OF1": 0.0}


def test_fused_record_in_full(tmp_path):
    """Every field of a derived record, written out by hand (the report and a rerun read all of them)."""
    import json
    from types import SimpleNamespace

    from bench.analysis.metrics import f1_block, multilabel_metrics
    from bench.grid.fusion import fuse_records
    from bench.io import sha256_json
    from bench.records import RECORD_VERSION, save_scores, saved_scores

    labels = np.array([[1, -1], [-1, 1], [1, -1]], np.int8)
    a_scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    b_scores = np.array([[0.0, 10.0], [5.0, 0.0], [10.0, 5.0]])

    def source(stem, scores, **fields):
        path = tmp_path / f"{stem}.json"
        save_scores(path, {"score": scores}, SimpleNamespace(labels=labels, image_ids=[7, 8, 9]))
        record = {"status": "ok", "dataset": "voc2007", "config_hash": f"h-{stem}", "data_key": f"d-{stem}",
                  "per_class_AP": {"cat": 1.0, "dog": 2.0}, "config": {"eval_split": "test"}, **fields}
        path.write_text(json.dumps(record))
        return path, record

    path_a, rec_a = source("a", a_scores, method="taidpt", setting="zero-shot", label_ratio=None, seed=1, mAP=40.0,
                           backbone={"spec": {"model": "RN50", "pretrained": "openai"}},
                           image_protocol={"mode": "cached", "views": 1})
    path_b, rec_b = source("b", b_scores, method="dualcoop", setting="fewshot", label_ratio=None, shots=4, seed=2,
                           mAP=45.0, backbone={"spec": {"model": "RN101", "pretrained": "/w/rn101.pt"}})
    out = fuse_records(path_a, path_b, 0.75, tmp_path / "fused.json", "tai+dual", pairing="same seed")
    record = json.loads(out.read_text())
    fused = 0.25 * (a_scores - 1.0) / 5.0 + 0.75 * b_scores / 10.0
    metrics = multilabel_metrics(fused, labels, ["cat", "dog"])
    fusion = {"rate": 0.75, "normalisation": "global min-max", "weights": {"taidpt": 0.25, "dualcoop": 0.75},
              "scores": "score", "reference": "TaI-DPT ensemble_score.py", "pairing": "same seed"}
    sources = [{"path": str(path_a), "method": "taidpt", "setting": "zero-shot", "label_ratio": None, "shots": None,
                "seed": 1, "config_hash": "h-a", "data_key": "d-a"},
               {"path": str(path_b), "method": "dualcoop", "setting": "fewshot", "label_ratio": None, "shots": 4,
                "seed": 2, "config_hash": "h-b", "data_key": "d-b"}]
    config = {"fusion": fusion, "eval_split": "test", "derived_from": [
        {"method": "taidpt", "config_hash": "h-a"}, {"method": "dualcoop", "config_hash": "h-b"}]}
    assert record.pop("environment")
    assert record == json.loads(json.dumps({
        "status": "ok", "record_version": RECORD_VERSION, "method": "tai+dual", "dataset": "voc2007",
        "setting": "fewshot", "label_ratio": None, "shots": 4, "seed": 2, "config_hash": sha256_json(config)[:16],
        "config": config, "mAP": metrics["mAP"], "per_class_AP": metrics["per_class_AP"],
        "empty_classes": [], "f1": f1_block(metrics),
        "branches": {"score": metrics["mAP"], "taidpt": 40.0, "dualcoop": 45.0},
        "backbone": {"spec": {"model": "RN50+RN101", "pretrained": "openai+/w/rn101.pt"},
                     "parts": [rec_a["backbone"], rec_b["backbone"]]},
        "image_protocol": {"mode": "cached", "views": 1},  # b has none: a's
        "derived_from": sources, "fusion": fusion, "train_data": None, "n_test": 3,
        "seconds": {"train": 0.0, "eval": 0.0}}))
    scores, saved_labels, ids = saved_scores(out)
    np.testing.assert_allclose(scores, fused, rtol=1e-6)
    np.testing.assert_array_equal(saved_labels, labels)
    assert ids.tolist() == ["7", "8", "9"]


@pytest.mark.parametrize(("change", "message"), [
    ({"dataset": "coco2014"}, "cannot fuse cells of different datasets or splits: coco2014/test ({a}) and "
                              "voc2007/test ({b})"),
    ({"config": {"eval_split": "val"}}, "cannot fuse cells of different datasets or splits: voc2007/val ({a}) and "
                                        "voc2007/test ({b})"),
    ({"per_class_AP": {"dog": 1.0, "cat": 2.0}}, "{a} and {b} list different classes"),
])
def test_fusion_refusals_name_both_cells(tmp_path, change, message):
    import json
    from types import SimpleNamespace

    from bench.grid.fusion import fuse_records
    from bench.records import save_scores

    labels = np.array([[1, -1], [-1, 1]], np.int8)
    paths = []
    for stem, extra in (("a", change), ("b", {})):
        path = tmp_path / f"{stem}.json"
        save_scores(path, {"score": np.eye(2)}, SimpleNamespace(labels=labels, image_ids=[1, 2]))
        path.write_text(json.dumps({"status": "ok", "method": stem, "dataset": "voc2007", "setting": "zero-shot",
                                    "label_ratio": None, "seed": 1, "config_hash": stem, "mAP": 50.0,
                                    "per_class_AP": {"cat": 1.0, "dog": 2.0},
                                    "config": {"eval_split": "test"}, **extra}))
        paths.append(path)
    with pytest.raises(ValueError) as info:
        fuse_records(paths[0], paths[1], 0.5, tmp_path / "out.json", "f")
    assert str(info.value) == message.format(a=paths[0], b=paths[1])


# ----- methods/_parts/lora.py -------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [True, False])
def test_split_attention_equals_multihead_attention_with_a_boolean_mask(batch_first):
    from bench.methods._parts.lora import SplitAttention

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    x = torch.randn(3, 5, 8) if batch_first else torch.randn(5, 3, 8)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)  # True: may not attend
    split = SplitAttention(mha).eval()
    with torch.no_grad():
        expected = mha(x, x, x, need_weights=False, attn_mask=causal)[0]
        np.testing.assert_allclose(split(x, x, x, attn_mask=causal)[0].numpy(), expected.numpy(), atol=1e-6)
        as_float = torch.zeros(5, 5).masked_fill(causal, float("-inf"))
        np.testing.assert_allclose(split(x, x, x, attn_mask=as_float)[0].numpy(), expected.numpy(), atol=1e-6)
    for kwargs in ({"need_weights": True}, {"key_padding_mask": torch.zeros(3, 5, dtype=torch.bool)}):
        with pytest.raises(NotImplementedError) as info:
            split(x, x, x, **kwargs)
        assert str(info.value) == "SplitAttention supports neither key_padding_mask nor need_weights"


def test_split_attention_layers_and_lora_params_are_checked(tiny_rn_cfg):
    import open_clip

    from bench.errors import UsageError
    from bench.methods._parts.lora import SplitAttention, inject_lora, split_attention

    model = open_clip.create_model(tiny_rn_cfg["model"], pretrained=None)  # one text block
    with pytest.raises(UsageError) as info:
        split_attention(model.transformer, [1])
    assert str(info.value) == "LoRA layer index 1 out of range: the transformer has 1 blocks"
    assert split_attention(model.transformer, ["0"]) == ["0"]
    assert isinstance(model.transformer.resblocks[0].attn, SplitAttention)
    for params in ([], ["q", "x"]):
        with pytest.raises(UsageError) as info:
            inject_lora(model, {"transformer": ["0"]}, params, rank=2, alpha=1.0, dropout=0.0)
        assert str(info.value) == f"clip_lora.params must be a non-empty subset of ['k', 'o', 'q', 'v'], got {params}"
    lora = inject_lora(model, {"transformer": ["0"], "visual.transformer": []}, ["q", "v"], rank=2, alpha=1.0,
                       dropout=0.0)
    assert sorted({name.split(".attn.")[1].split(".")[0] for name in lora}) == ["q_proj", "v_proj"]
