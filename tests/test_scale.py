"""The parts that measure bench at the real datasets' size: full-size synthetic trees, the stand-in encoder,
resamples stored beside records, the cost of a sweep before it runs, the named phases of a run."""

import json

import numpy as np
import pytest
import torch

from bench.analysis.stats import ResampledAP, map_resamples, seed_map_resamples, seeds_and_images_bootstrap_map
from bench.data.synthetic import COUNTS, scaled, write_coco, write_nuswide, write_voc, zipf_frequencies


# ----- synthetic full-size trees --------------------------------------------------------------------------
@pytest.mark.parametrize("top, mean", [(0.54, 2.9), (0.40, 1.4), (0.28, 2.4)])
def test_zipf_profile_matches_its_statistics_among_labelled_images(top, mean):
    """Among images with at least one label, the most frequent class's share and the mean labels per image are
    the targets (computed here from the frequencies, independently of the fit)."""
    freqs = zipf_frequencies(80, top, mean)
    p_labelled = 1 - np.prod(1 - freqs)
    assert freqs[0] / p_labelled == pytest.approx(top, abs=1e-3)
    assert freqs.sum() / p_labelled == pytest.approx(mean, abs=1e-3)
    assert np.all(np.diff(freqs) <= 0)


def test_synthetic_trees_read_back_with_their_counts_and_statistics(tmp_path):
    from bench.data.coco import COCO2014
    from bench.data.nuswide import NUSWIDE
    from bench.data.voc import VOC2007

    write_coco(tmp_path / "coco", fraction=0.01, workers=1)
    write_voc(tmp_path / "voc", fraction=0.05, workers=1)
    write_nuswide(tmp_path / "nus", fraction=0.005, workers=1)
    coco = COCO2014(str(tmp_path / "coco"))
    train, test = coco.load("train"), coco.load("test")
    # the reader keeps the annotated images: the real counts scaled (82,081 and 40,137 of 82,783 and 40,504)
    assert (len(train), len(test)) == (scaled("coco", 0.01)["train"][1], scaled("coco", 0.01)["test"][1])
    assert len(train.classnames) == 80 and train.classnames[0] == "person"
    per_image = (train.labels == 1).sum(1).mean()
    assert 2.5 < per_image < 3.3  # COCO: 2.9 labels per annotated image
    assert len(coco.caption_corpus()) == scaled("coco", 0.01)["train"][0]  # one caption per image (the default)
    voc = VOC2007(str(tmp_path / "voc")).load("test")
    assert len(voc) == scaled("voc2007", 0.05)["test"][0] and len(voc.classnames) == 20
    nus = NUSWIDE(str(tmp_path / "nus"))
    listed = nus.load("train")
    assert len(listed) == scaled("nuswide", 0.005)["train"][0]
    labelled = (listed.labels == 1).any(1).sum()
    assert labelled == scaled("nuswide", 0.005)["train"][1]  # images without a concept stay listed
    zsl = nus.load_zsl("test")
    assert zsl.labels.shape[1] == 925 + 81  # the zsl class list: 925 tags that are not concepts + 81 concepts
    from bench.data.captions import synonym_lists

    names, synonyms = synonym_lists(str(tmp_path / "nus" / "NUS_WID_Tags" / "synonyms_1006.json"), zsl.classnames)
    assert names == zsl.classnames and synonyms[names.index("tag000")] == ["tag000"]  # the zsl run's prompts
    assert synonyms[names.index("airport")][0] == "airport"
    assert all(COUNTS[name]["train"][0] >= COUNTS[name]["train"][1] for name in COUNTS)


# ----- the stand-in encoder ------------------------------------------------------------------------------
@pytest.mark.parametrize("model, size, dim, grid", [("standin:RN50", 224, 1024, 49), ("standin:RN101", 448, 512, 196),
                                                     ("standin:ViT-B-16", 224, 512, 196)])
def test_standin_has_the_real_output_shapes(model, size, dim, grid):
    from bench.features.spec import resolve_spec
    from bench.features.standin import load_standin

    backbone = load_standin(resolve_spec({"model": model, "image_size": size}))
    feats = backbone.encode_images(torch.rand(2, 3, size, size), ("global", "global_nopos", "dense", "dense_nopos"))
    assert feats["global"].shape == (2, dim) and feats["global_nopos"].shape == (2, dim)
    assert feats["dense"].shape == (2, 1 + grid, dim) and feats["dense_nopos"].shape == (2, grid, dim)
    assert backbone.encode_text(["a photo of a dog."]).shape == (1, dim)
    again = load_standin(resolve_spec({"model": model, "image_size": size}))
    assert again.weights_hash == backbone.weights_hash  # fixed weights: the cache keys agree across processes


def test_standin_rejects_weights_and_unknown_architectures():
    from bench.features.spec import BackboneError, resolve_spec
    from bench.features.standin import load_standin

    with pytest.raises(BackboneError, match="unknown stand-in architecture 'RN49'.*valid: standin:RN50"):
        load_standin(resolve_spec({"model": "standin:RN49"}))
    with pytest.raises(BackboneError, match="is a stand-in with fixed random weights; drop backbone.pretrained"):
        load_standin(resolve_spec({"model": "standin:RN50", "pretrained": "openai"}))


def test_standin_records_are_marked_in_the_report(tmp_path, tiny_coco, capsys):
    """A run with the stand-in says so in its records (backbone standin:...) and the report says so on top."""
    from bench.cli import main
    from bench.testing import write_tiny_config

    config = write_tiny_config(tmp_path / "c.py", {"type": "coco2014", "data_root": str(tiny_coco[0])},
                               {"model": "standin:RN50", "image_size": 64})
    assert main(["run", "--methods", "zsclip", "--dataset", str(config), "--work-dir", str(tmp_path / "w"),
                 "--quiet"]) == 0
    (record,) = (tmp_path / "w").rglob("zsclip__zero-shot__s1.json")
    assert json.loads(record.read_text())["backbone"]["spec"]["model"] == "standin:RN50"
    assert main(["report", "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r"), "--format", "md"]) == 0
    index = (tmp_path / "r" / "README.md").read_text()
    assert "stand-in encoder" in index and "standin:RN50" in (tmp_path / "r" / "results.md").read_text()
    timings = json.loads((tmp_path / "w" / "c" / "timings.json").read_text())["phases"]
    assert {"read annotations", "image features: extract and write", "records and scores",
            "bootstrap resamples"} <= set(timings)
    # a second report with nothing new writes nothing; a changed record, or --force, writes it all again
    index = tmp_path / "r" / "README.md"
    before = index.stat().st_mtime_ns
    assert main(["report", "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r"), "--format", "md",
                 "--timings", str(tmp_path / "t.json")]) == 0
    assert "bench report: nothing new since the report in" in capsys.readouterr().out
    assert index.stat().st_mtime_ns == before
    record.write_text(record.read_text())  # the same bytes, a new mtime: it may have been rewritten
    assert main(["report", "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r"), "--format", "md"]) == 0
    assert "wrote " in capsys.readouterr().out and index.stat().st_mtime_ns != before
    before = index.stat().st_mtime_ns
    assert main(["report", "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r"), "--format", "md",
                 "--force"]) == 0
    assert index.stat().st_mtime_ns != before
    assert main(["report", "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "r"), "--format", "md,csv"]) == 0
    assert (tmp_path / "r" / "results.csv").is_file()  # other options: written


# ----- bootstrap resamples, batched and stored ---------------------------------------------------------
def test_resampled_ap_batch_equals_one_at_a_time():
    rng = np.random.default_rng(3)
    scores, labels = np.round(rng.random((60, 5)), 1), rng.choice([1, -1, 0], size=(60, 5), p=[0.3, 0.6, 0.1])
    ap = ResampledAP(scores, labels)
    counts = np.stack([np.bincount(rng.integers(0, 60, 60), minlength=60) for _ in range(7)], 1)
    batch = ap(counts)
    for k in range(7):
        np.testing.assert_allclose(batch[:, k], ap(counts[:, k]), atol=1e-15, equal_nan=True)


def test_stored_resamples_equal_fresh_ones_and_follow_the_scores_file(tmp_path):
    from bench.records import record_resamples, resamples_path, save_scores, scores_path

    class Test:  # what save_scores reads of a split
        labels = np.where(np.random.default_rng(1).random((40, 3)) < 0.3, 1, -1)
        image_ids = list(range(40))

    scores = np.random.default_rng(2).random((40, 3)).astype(np.float32)
    record = tmp_path / "m__zero-shot__s1.json"
    save_scores(record, {"score": scores}, Test)  # a finished cell stores its resamples with its scores
    assert resamples_path(record).is_file()
    stored = record_resamples(record)
    observed, values = map_resamples(scores, Test.labels, 1000, 0)
    assert stored.observed == pytest.approx(observed) and np.allclose(stored.values, values)
    # a rewritten scores file (another stat) is resampled again, not read from the stale file
    save_scores(record, {"score": 1 - scores}, Test, resamples=False)
    again = record_resamples(record)
    assert np.allclose(again.values, map_resamples(1 - scores, Test.labels, 1000, 0)[1])
    other = record_resamples(record, n_boot=50, seed=3)  # other settings: computed, and stored instead
    assert len(other.values) == 50
    resamples_path(record).write_bytes(b"not a zip")  # damaged: recomputed
    assert np.allclose(record_resamples(record).values, again.values)
    scores_path(record).unlink()
    with pytest.raises(ValueError, match="scores file .* is missing"):
        record_resamples(record)


def test_store_resamples_stamps_a_copy_with_its_sources_resamples_and_they_are_read_not_recomputed(tmp_path,
                                                                                                  monkeypatch):
    import shutil

    import bench.analysis.stats as stats
    from bench.records import record_resamples, resamples_path, save_scores, scores_path, store_resamples

    class Test:
        labels = np.where(np.random.default_rng(3).random((30, 4)) < 0.4, 1, -1)
        image_ids = list(range(30))

    scores = np.random.default_rng(4).random((30, 4)).astype(np.float32)
    source, copy = tmp_path / "a__zero-shot__s1.json", tmp_path / "b__zero-shot__s1.json"
    save_scores(source, {"score": scores}, Test)
    shutil.copyfile(scores_path(source), scores_path(copy))
    store_resamples(copy, record_resamples(source, store=False))
    monkeypatch.setattr(stats, "map_resamples", lambda *a: pytest.fail("resamples computed, not read"))
    read = record_resamples(copy)
    observed, values = map_resamples(scores, Test.labels, 1000, 0)  # the module's own, bound before the patch
    assert read.observed == pytest.approx(observed) and np.allclose(read.values, values)
    # stamped with the copy's own stat: rewriting the copy makes them stale
    save_scores(copy, {"score": 1 - scores}, Test, resamples=False)
    monkeypatch.undo()
    assert np.allclose(record_resamples(copy).values, map_resamples(1 - scores, Test.labels, 1000, 0)[1])
    assert resamples_path(copy).is_file()


def test_significance_from_stored_resamples_equals_the_bootstrap_on_scores():
    from bench.analysis.stats import seeds_and_images_bootstrap

    rng = np.random.default_rng(8)
    labels = np.where(rng.random((50, 4)) < 0.3, 1, -1)
    a = [rng.random((50, 4)) + 0.2 * k * (labels == 1) for k in range(3)]
    b = [rng.random((50, 4)) for _ in range(2)]
    direct = seeds_and_images_bootstrap_map(a, b, labels, n_boot=200, seed=4)
    stored = seeds_and_images_bootstrap(*seed_map_resamples(a, labels, 200, 4), *seed_map_resamples(b, labels, 200, 4),
                                        seed=4)
    assert stored == direct


# ----- the cost of a sweep before it runs ---------------------------------------------------------------
def test_dry_run_counts_work_bytes_and_prompts(tmp_path, tiny_coco, capsys):
    """Hand-computed: the stand-in RN50 at 64 px stores D=1024 values per global feature and 1+4 rows per dense
    map; CoOp encodes its C prompts per forward pass, CoCoOp B x C, DualCoOp 2C, zero-shot CLIP none."""
    from bench.cli import main
    from bench.config import CONFIG_DIR

    bases = [str(CONFIG_DIR / "_base_" / "default_runtime.py")] + [
        str(CONFIG_DIR / "_base_" / "methods" / f"{m}.py") for m in ("zsclip", "coop", "cocoop", "dualcoop")]
    config = tmp_path / "c.py"
    config.write_text(f"_base_ = {bases!r}\n"
                      f"dataset = dict(type='coco2014', data_root={str(tiny_coco[0])!r})\n"
                      "backbone = dict(model='standin:RN50', image_size=64)\n"
                      "features = dict(batch_size=8, num_workers=0)\nsweep = dict(ratios=[0.5], seeds=[1])\n"
                      "coop = dict(train=dict(epochs=3, batch_size=5))\n"
                      "cocoop = dict(train=dict(epochs=1, batch_size=1))\n"
                      "dualcoop = dict(train=dict(epochs=1, batch_size=4))\n")
    assert main(["run", "--methods", "zsclip,coop,cocoop,dualcoop", "--dataset", str(config), "--settings",
                 "zero-shot,partial", "--work-dir", str(tmp_path / "w"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 cells, 4 to run" in out and "data on disk" in out and "test 8 images, train 12 images, 4 classes" in out
    n_test, n_train = 8, 12
    kinds = {"global": 1024, "dense": 5 * 1024}
    test_bytes = 2 * n_test * (kinds["global"] + kinds["dense"])  # coop/cocoop global, dualcoop dense
    assert f"| standin:RN50@random-init | 64 | test | 8 | 1 | dense, global | {test_bytes / 1e9:.2f} GB |" in out
    eval_batches = 1  # 8 test images, eval batch 256
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in out.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in ("coop", "cocoop", "dualcoop", "zsclip")}
    assert rows["coop"][2] == str(3 * -(-n_train // 5))  # 3 epochs x 3 batches
    assert rows["coop"][3] == str(9 * 4 + eval_batches * 4)  # C prompts per forward
    assert rows["cocoop"][3] == str(12 * 4 + n_test * 4)  # B x C per forward: C per image trained and tested
    assert rows["dualcoop"][3] == str(3 * 8 + eval_batches * 8)  # 2C per forward
    assert rows["zsclip"][2:4] == ["0", "0"]


def test_estimated_hours_are_counts_over_rates():
    from bench.grid.calibrate import estimate_hours
    from bench.grid.cost import Cost, Sizes

    cost = Cost("d", Sizes({"test": 10, "train": 20}, 4, "given"))
    cost.feature_sets = [{"backbone": "B@w", "arch": "B@224", "images": 300, "views": 2, "bytes": 0,
                          "kinds": ["global"]}]
    cost.cells = [{"method": "coop", "steps": 100, "eval_prompt_passes": 400, "fits_features": False},
                  {"method": "tip", "steps": 0, "eval_prompt_passes": 0, "fits_features": True}]
    cost.generated = [{"method": "t2ipal", "images": 50}]
    rates = {"device": "cpu", "encoder": {"B@224": 10.0}, "prompts_per_s": {"B@224": 200.0},
             "train_prompts_per_s": {"B@224": 50.0}, "step_s": {"coop": 0.5},
             "generate_per_s": {"t2ipal": 5.0}}
    found = estimate_hours([cost], rates)
    assert (found["extract_s"], found["train_s"], found["evaluate_s"], found["generate_s"]) == (60, 50, 2, 10)
    assert found["total_s"] == 122 and "not included: fits from features (tip)" in found["text"]
    other = Cost("e", Sizes({"test": 1, "train": 1}, 4, "given"))
    other.cells = [{"method": "coop", "steps": 36, "eval_prompt_passes": 0, "fits_features": False}]
    both = estimate_hours([cost, other], rates)  # per dataset, and their sum
    assert both["per_dataset"]["e"]["total_s"] == 18 and both["total_s"] == 140 and both["train_s"] == 68
    assert "  e: feature extraction 0.0 h, training 0.0 h, evaluation 0.00 h, generation 0.0 h: about 0.0 h" \
        in both["text"].splitlines()
    assert both["text"].splitlines()[-2].startswith("  every dataset: feature extraction 0.0 h, training 0.0 h")


def test_gpu_check_runs_its_steps_on_the_cpu(tmp_path, capsys):
    """benchmarks/gpu_check.py (the first thing to run on a GPU) on the CPU, small: its table has every method
    asked for, each ok, and the extraction rate of the architecture asked for."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    code = gpu_check.main(["--scratch", str(tmp_path), "--device", "cpu", "--amp", "none", "--methods",
                           "zsclip,coop", "--model", "standin:RN50", "--extract", "standin:RN50@64",
                           "--no-torchrun", "--fraction", "0.0005"])
    out = capsys.readouterr().out
    assert code == 0, (tmp_path / "run-none.log").read_text()[-2000:]
    assert "| coop | ok |" in out and "| zsclip | ok |" in out
    assert "extraction standin:RN50@64 (global + dense):" in out
    found = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(found["cells"]["none"]["methods"]) == {"zsclip", "coop"}


def test_steps_per_epoch_takes_the_first_batches_of_each_epochs_order():
    """train.steps_per_epoch: each epoch yields the first N x batch indices of the same seeded order as a full
    epoch (so a capped run times the same batches a full one starts with)."""
    from bench.cell.train import EpochSampler

    data = list(range(50))
    full, capped = EpochSampler(data, seed=3), EpochSampler(data, seed=3, limit=12)
    for epoch in (0, 1):
        full.set_epoch(epoch)
        capped.set_epoch(epoch)
        assert list(capped) == list(full)[:12] and len(capped) == 12
    assert len(EpochSampler(data, seed=3, limit=80)) == 50
