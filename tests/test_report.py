"""bench report on synthetic records written to tmp_path: table values (checked against independent
computations), bold, LaTeX, plots, ablation diffs, significance, failures, diagnostics, the index, the CLI."""

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis.metrics import multilabel_metrics
from bench.analysis.stats import pareto_front, seeds_and_images_bootstrap_map
from bench.cli import main
from bench.report import RecordError, find_records, read_records, summary_table, write_report
from bench.report.cost import cost_points
from bench.report.format import latex_escape, latex_value, markdown_table
from bench.report.gaps import gaps_section
from bench.report.significance import significance_section
from bench.report.tables import ablation_section, failed_section, results_section

CLASSES = ["cat", "dog", "car"]
RNG = np.random.default_rng(0)
LABELS = np.where(RNG.random((40, 3)) < 0.35, 1, -1)
LABELS[0] = 1


def scores_like(quality: float, seed: int) -> np.ndarray:
    """Scores that rank positives higher the larger ``quality`` is."""
    noise = np.random.default_rng(seed).random(LABELS.shape)
    return quality * (LABELS == 1) + noise


def write_cell(root: Path, method: str, setting: str = "partial", ratio: float | None = 0.5, seed: int = 1, *,
               scores: np.ndarray | None = None, dataset: str = "coco2014", method_type: str | None = None,
               hparams: dict | None = None, backbone: tuple = ("RN50", "openai"), protocol: dict | None = None,
               seconds: dict | None = None, train_data: dict | None = None, status: str = "ok",
               error: str | None = None, branches: dict | None = None, derived_from: list | None = None,
               run: str = "run", eval_split: str = "test", shots: int | None = None,
               resolution: int | None = 224, backbone_parts: list | None = None) -> Path:
    """A record as the runner writes it (the fields the report reads), its scores beside it. ``backbone_parts``:
    a fused record's (model, resolution) per source."""
    folder = root / run / "records" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{method}__{setting}" + (f"_r{ratio:g}" if ratio is not None else "") \
        + (f"_k{shots}" if shots is not None else "") + f"__s{seed}"
    path = folder / f"{name}.json"
    config = {"dataset": {"type": dataset}, "backbone": {"model": backbone[0], "pretrained": backbone[1]},
              "method": {"name": method, "type": method_type or method, "kwargs": hparams or {}, "train": {}},
              "eval_split": eval_split}
    record = {"record_version": 1, "status": status, "method": method, "dataset": dataset, "setting": setting,
              "label_ratio": ratio, "shots": shots, "seed": seed, "config_hash": f"hash-{name}", "config": config,
              "environment": {"git_commit": "abc123"}}
    if status != "ok":
        path.write_text(json.dumps({**record, "error": error}))
        return path
    scores = scores_like(1.0, seed) if scores is None else scores
    metrics = multilabel_metrics(scores, LABELS, CLASSES)
    record.update({
        "mAP": metrics["mAP"], "per_class_AP": metrics["per_class_AP"], "empty_classes": [],
        "f1": {}, "branches": {"score": metrics["mAP"], **(branches or {})},
        "backbone": {"spec": {"model": backbone[0], "pretrained": backbone[1]}, "weights_sha256": "0" * 64,
                     "resolution": resolution},
        "image_protocol": protocol, "method_hparams": hparams or {}, "train_schedule": {"epochs": 1},
        "train_data": train_data, "n_test": len(LABELS), "n_trainable_params": 10,
        "seconds": seconds or {"extract_test": 1.0, "prepare_train": 0.0, "train": 2.0, "eval": 0.5},
        "peak_memory_mb": {"process_peak_rss_mb": 100.0 + seed},
    })
    if derived_from:
        record["derived_from"] = derived_from
    if backbone_parts:
        record["backbone"]["parts"] = [{"spec": {"model": m, "pretrained": "openai"}, "resolution": r}
                                       for m, r in backbone_parts]
    np.savez(folder / f"{name}.scores.npz", labels=LABELS, image_ids=np.array([str(i) for i in range(len(LABELS))]),
             score__score=scores.astype(np.float32))
    path.write_text(json.dumps(record))
    return path


def table_cell(table, row_label: str, column: str, label_column: str = "method") -> str:
    row = table.frame.index[table.frame[label_column] == row_label][0]
    return table.frame.loc[row, column]


def test_results_table_mean_std_bold_and_zero_shot_column(tmp_path):
    maps = {}
    for method, quality in (("coop", 0.3), ("dualcoop", 0.8)):
        for seed in (1, 2, 3):
            path = write_cell(tmp_path, method, seed=seed, scores=scores_like(quality, seed),
                              protocol={"mode": "cached", "views": 1})
            maps.setdefault(method, []).append(json.loads(path.read_text())["mAP"])
    zs = json.loads(write_cell(tmp_path, "zsclip", "zero-shot", None, scores=scores_like(0.5, 9)).read_text())["mAP"]
    records = read_records(find_records(tmp_path))
    [table] = results_section(records).tables
    assert list(table.frame.columns) == ["method", "backbone", "protocol", "seeds", "zero-shot", "partial 0.5"]
    for method, values in maps.items():
        expected = f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
        assert table_cell(table, method, "partial 0.5") == expected
    assert table_cell(table, "zsclip", "zero-shot") == f"{zs:.2f}"  # one seed: no std
    assert table_cell(table, "coop", "zero-shot") == "-"
    best = max(maps, key=lambda m: statistics.mean(maps[m]))
    bold = {table.frame.method[i] for i in range(len(table.frame)) if table.bold["partial 0.5"][i]}
    assert bold == {best}
    assert f"**{table_cell(table, best, 'partial 0.5')}**" in markdown_table(table)
    text = summary_table(records.cells)  # flat header, no tuple index
    assert "| dataset " in text and "('" not in text and f"{zs:.2f}" in text


def test_rows_never_mix_backbones_or_protocols(tmp_path):
    write_cell(tmp_path, "coop", backbone=("RN50", "openai"), protocol={"mode": "cached", "views": 1})
    write_cell(tmp_path, "coop", backbone=("RN101", "openai"), protocol={"mode": "cached", "views": 1}, run="rn101")
    write_cell(tmp_path, "coop", backbone=("RN50", "openai"), protocol={"mode": "online", "views": 1}, run="online")
    write_cell(tmp_path, "coop", protocol={"mode": "cached", "views": 1}, run="val", eval_split="val")
    test_table, val_table = results_section(read_records(find_records(tmp_path))).tables
    rows = set(zip(test_table.frame.method, test_table.frame.backbone, test_table.frame.protocol))
    assert rows == {("coop", "RN50@openai", "cached K=1"), ("coop", "RN101@openai", "cached K=1"),
                    ("coop", "RN50@openai", "online K=1")}
    assert val_table.title.startswith("coco2014-val") and len(val_table.frame) == 1  # never mixed with test


def test_latex_escaping_and_bold(tmp_path):
    assert latex_escape(r"a_b & 50% $x$ #1 {y} ~ ^ \ ±") == \
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} $\pm$"
    assert latex_value("[-1.50, -0.20] a-1") == r"[$-$1.50, $-$0.20] a-1"
    for seed in (1, 2):
        write_cell(tmp_path, "t2ipal_no_adapter", "zero-shot", None, seed, method_type="t2ipal")
    write_cell(tmp_path, "zsclip", "zero-shot", None, scores=scores_like(0.0, 5))
    out = tmp_path / "rep"
    write_report(read_records(find_records(tmp_path)), out, ("tex",), n_boot=0)
    tex = (out / "results.tex").read_text()
    assert r"t2ipal\_no\_adapter" in tex and "t2ipal_no_adapter" not in tex
    assert re.search(r"\\textbf\{\d+\.\d\d \$\\pm\$ \d+\.\d\d\}", tex)  # the best, with its std
    assert r"\begin{tabular}" in tex and r"\caption{coco2014: mAP (\%)}" in tex
    assert not (out / "results.md").exists() and not (out / "results.csv").exists()


def test_plots_are_written(tmp_path):
    for ratio in (0.1, 0.5, 0.9):
        for seed in (1, 2):
            write_cell(tmp_path, "coop", ratio=ratio, seed=seed, scores=scores_like(ratio, seed))
    write_cell(tmp_path, "zsclip", "zero-shot", None)
    out = tmp_path / "rep"
    written = write_report(read_records(find_records(tmp_path)), out, ("png", "pdf"), n_boot=0)
    for stem in ("map_vs_ratio_coco2014", "pareto_coco2014"):
        png, pdf = out / f"{stem}.png", out / f"{stem}.pdf"
        assert png in written and pdf in written
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
        assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000


def test_ablation_rows_and_their_differences(tmp_path):
    base = {"adapter": "mlp", "images_per_caption": 1, "heatmap": True, "generator": {"type": "toy", "size": 64}}
    for seed in (1, 2):
        write_cell(tmp_path, "t2ipal", "zero-shot", None, seed, method_type="t2ipal", hparams=base,
                   branches={"global": 40.0 + seed, "prototype": 30.0})
    write_cell(tmp_path, "t2ipal_no_adapter", "zero-shot", None, method_type="t2ipal",
               hparams={**base, "adapter": None}, branches={"global": 41.0, "prototype": 20.0})
    write_cell(tmp_path, "t2ipal_x2", "zero-shot", None, method_type="t2ipal",
               hparams={**base, "images_per_caption": 2, "generator": {"type": "toy", "size": 32}})
    write_cell(tmp_path, "taidpt", "zero-shot", None, branches={"global": 50.0})
    write_cell(tmp_path, "coop")  # not an ablation row
    section = ablation_section(read_records(find_records(tmp_path)))
    [table] = section.tables
    assert list(table.frame.method) == ["t2ipal", "t2ipal_no_adapter", "t2ipal_x2", "taidpt"]
    differs = dict(zip(table.frame.method, table.frame["differs from t2ipal"]))
    assert differs == {"t2ipal": "(base)", "t2ipal_no_adapter": "adapter=None",
                       "t2ipal_x2": "generator.size=32, images_per_caption=2", "taidpt": "(reference)"}
    assert table_cell(table, "t2ipal", "branch global") == f"41.50 ± {statistics.stdev([41.0, 42.0]):.2f}"
    assert table_cell(table, "t2ipal_no_adapter", "branch prototype") == "20.00"
    assert table_cell(table, "t2ipal_x2", "branch global") == "-"
    assert "mAP" in table.frame.columns and "branch score" not in table.frame.columns  # the score branch is the mAP


def test_significance_table_matches_the_stats_function(tmp_path):
    paths = {}
    for method, quality in (("coop", 0.2), ("dualcoop", 1.5), ("t2ipal", 0.6)):
        for seed in ((1, 2) if method != "t2ipal" else (1,)):
            paths.setdefault(method, []).append(write_cell(tmp_path, method, seed=seed,
                                                           scores=scores_like(quality, seed + 10)))
    records = read_records(find_records(tmp_path))

    def matrices(method):
        return [np.load(p.with_suffix(".scores.npz"))["score__score"] for p in paths[method]]

    section = significance_section(records, n_boot=150, boot_seed=0)
    data = section.data.set_index("method")
    assert set(data.reference) == {"dualcoop"} and set(data.index) == {"coop", "t2ipal"}  # best mean is reference
    for method in ("coop", "t2ipal"):  # coop ran dualcoop's seeds (1, 2): resampled together; t2ipal one seed
        direct = seeds_and_images_bootstrap_map(matrices(method), matrices("dualcoop"), LABELS, n_boot=150, seed=0,
                                                paired_seeds=method == "coop")
        row = data.loc[method]
        assert (row["diff"], row.ci_low, row.ci_high, row.p_value) == pytest.approx(
            (direct.observed, direct.ci_low, direct.ci_high, direct.p_value), abs=1e-9)
        assert row.significant == direct.significant
        [table] = section.tables
        assert table_cell(table, method, "95% CI") == f"[{direct.ci_low:.2f}, {direct.ci_high:.2f}]"
        assert table_cell(table, method, "significant") == ("yes" if direct.significant else "no")
    assert data.loc["coop"].significant  # quality 0.2 vs 1.5 on 40 images
    chosen = significance_section(records, reference="t2ipal", n_boot=20).data
    assert set(chosen.reference) == {"t2ipal"} and set(chosen.method) == {"coop", "dualcoop"}
    paths["coop"][1].with_suffix(".scores.npz").unlink()
    [table] = significance_section(records, n_boot=20).tables
    assert table_cell(table, "coop", "significant").startswith("no readable saved test scores")
    assert table_cell(table, "coop", "95% CI") == "-" and table_cell(table, "t2ipal", "p") != "-"


def test_failed_cells_are_listed(tmp_path):
    write_cell(tmp_path, "zsclip", "zero-shot", None)
    bad = write_cell(tmp_path, "coop", status="failed", error="NonFiniteLoss: coop: non-finite training loss (nan)")
    records = read_records(find_records(tmp_path))
    section = failed_section(records)
    [table] = section.tables
    assert list(table.frame.error) == ["NonFiniteLoss: coop: non-finite training loss (nan)"]
    assert list(table.frame.record) == [str(bad)]
    assert "failed cells:" in summary_table(records.cells) and "non-finite training loss" in summary_table(
        records.cells)


def diagnostics(n_duplicates: int = 25, dataset: str = "coco2014") -> dict:
    gap = {"centroid_distance": 0.8123, "mean_paired_cosine": 0.3141, "mean_image_image_cosine": 0.5,
           "mean_text_text_cosine": 0.6, "n_pairs": 100}
    return {"record_version": 1, "kind": "diagnostics", "status": "ok", "dataset": dataset,
            "backbone": {"spec": {"model": "RN50", "pretrained": "openai"}},
            "generator": {"generator": "toy", "size": 64, "version": 1},
            "modality_gap": {"real_images_vs_captions": gap,
                             "generated_images_vs_captions": {**gap, "centroid_distance": 0.9}},
            "domain_gap": {"frechet_generated_vs_real": 12.345, "frechet_real_train_vs_real_test": 1.5,
                           "n_generated": 50, "n_real": 40},
            "leakage": {"threshold": 0.95, "n_generated": 50, "n_test": 40, "n_near_duplicates": 3,
                        "max_similarity": 0.991,
                        "near_duplicates": [{"generated": f"gen/{i}.png", "test": f"test/{i}.jpg",
                                             "cosine": 0.9 + i / 1000} for i in range(n_duplicates)]}}


def test_diagnostics_tables(tmp_path):
    write_cell(tmp_path, "zsclip", "zero-shot", None)
    path = tmp_path / "run" / "records" / "coco2014" / "diagnostics__toy.json"
    path.write_text(json.dumps(diagnostics()))
    records = read_records(find_records(tmp_path))
    assert list(records.cells.method) == ["zsclip"] and list(records.diagnostics) == [str(path)]
    modality, domain, duplicates = gaps_section(records).tables
    assert list(modality.frame.pair) == ["real images vs captions", "generated images vs captions"]
    assert list(modality.frame["centroid distance"]) == ["0.812", "0.900"]
    assert list(modality.frame.generator) == ["toy (size=64, version=1)"] * 2
    assert domain.frame["Fréchet generated vs real"][0] == "12.345"
    assert domain.frame["near duplicates"][0] == "3 (cos ≥ 0.950)" and domain.frame["max cosine"][0] == "0.991"
    assert len(duplicates.frame) == 20 and duplicates.frame.generated[0] == "gen/24.png"  # best first, top 20
    out = tmp_path / "rep"
    write_report(records, out, ("md", "tex"), n_boot=0)
    assert "gen/24.png" in (out / "gaps.md").read_text() and r"$\geq$" in (out / "gaps.tex").read_text()


def test_toy_label_in_the_index(tmp_path):
    write_cell(tmp_path, "zsclip", "zero-shot", None, dataset="coco2014")
    out = tmp_path / "rep"
    write_report(read_records(find_records(tmp_path)), out, ("md",), n_boot=0)
    assert "toy numbers, not comparable to real datasets" not in (out / "README.md").read_text().lower()
    write_cell(tmp_path, "zsclip", "zero-shot", None, dataset="toy", backbone=("toy-clip", "builtin:toy/x"))
    write_report(read_records(find_records(tmp_path)), out, ("md",), n_boot=0)
    index = (out / "README.md").read_text()
    assert "Toy numbers, not comparable to real datasets" in index and "toy world: toy" in index
    assert "Toy numbers" in (out / "results.md").read_text()


def test_cost_counts_fused_sources_and_marks_the_pareto_front(tmp_path):
    a = write_cell(tmp_path, "taidpt", "zero-shot", None, seconds={"train": 10.0, "eval": 1.0})
    b = write_cell(tmp_path, "dualcoop", seconds={"train": 5.0, "eval": 1.0}, scores=scores_like(0.2, 3))
    write_cell(tmp_path, "coop", seconds={"train": 1.0}, scores=scores_like(0.1, 4))
    sources = [{"path": str(p), "method": m, "setting": s, "label_ratio": r, "seed": 1, "config_hash": f"hash-{n}"}
               for p, m, s, r, n in ((a, "taidpt", "zero-shot", None, "taidpt__zero-shot__s1"),
                                     (b, "dualcoop", "partial", 0.5, "dualcoop__partial_r0.5__s1"))]
    write_cell(tmp_path, "taidpt+dualcoop", seconds={"train": 0.0, "eval": 0.5}, derived_from=sources,
               scores=scores_like(2.0, 5))
    points = cost_points(read_records(find_records(tmp_path))).set_index("method")
    assert points.loc["taidpt+dualcoop", "cost_s"] == pytest.approx(0.5 + 11.0 + 6.0)
    partial = points[points.cell == "partial 0.5"]
    np.testing.assert_array_equal(partial.pareto, pareto_front(partial.cost_s, partial.mAP))
    assert points.loc["taidpt", "pareto"]  # alone in its cell


def test_malformed_records_are_named(tmp_path):
    folder = tmp_path / "run" / "records" / "coco2014"
    folder.mkdir(parents=True)
    for name, text in (("list.json", "[1, 2]"), ("missing.json", json.dumps({"method": "x", "status": "ok"})),
                       ("kind.json", json.dumps({"kind": "mystery", "dataset": "x"}))):
        (folder / name).write_text(text)
        with pytest.raises(RecordError, match=f"malformed record {re.escape(str(folder / name))}"):
            read_records([str(folder / name)])


def test_bench_report_end_to_end(tmp_path, capsys):
    work = tmp_path / "work_dirs"
    for seed in (1, 2):
        write_cell(work, "coop", seed=seed, protocol={"mode": "cached", "views": 4})
        write_cell(work, "t2ipal", "zero-shot", None, seed, method_type="t2ipal",
                   train_data={"generator": {"generator": "toy"}, "n_generated": 100, "generation_seconds": 3.0})
    write_cell(work, "zsclip", "zero-shot", None)
    write_cell(work, "dualcoop", status="failed", error="boom")
    (work / "run" / "records" / "coco2014" / "diagnostics__x.json").write_text(json.dumps(diagnostics(3)))
    assert main(["report", "--work-dir", str(work), "--n-boot", "30"]) == 0
    out = tmp_path / "reports"  # default: beside the work dir
    stdout = capsys.readouterr().out
    assert "zsclip" in stdout and "cached K=4" in stdout and "README.md" in stdout
    index = (out / "README.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert {"results.csv", "results.md", "results.tex", "significance.md", "gaps.md", "ablation.md", "cost.md",
            "failed.md", "per_class.md", "map_vs_ratio_coco2014.png", "pareto_coco2014.pdf"} <= set(links)
    assert all((out / link).is_file() and (out / link).stat().st_size > 0 for link in links)
    assert f"`{work / 'run'}`: 6 cell records, 1 diagnostics records" in index
    assert "boom" in (out / "failed.md").read_text()
    results = pd.read_csv(out / "results.csv")
    assert set(results.method) == {"coop", "t2ipal", "zsclip"}
    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "only"), "--format", "csv,md",
                 "--n-boot", "0"]) == 0
    assert not list((tmp_path / "only").glob("*.png")) and (tmp_path / "only" / "records.csv").is_file()
    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "x"), "--format", "docx"]) == 2
    assert "unknown report format" in capsys.readouterr().err


def test_report_modules_do_not_import_torch():
    # reading records needs neither torch nor mmengine (the mmengine metric lives in bench.analysis.mmmetric)
    import subprocess
    import sys

    code = ("import sys, bench.report, bench.report.build, bench.report.cost, bench.report.gaps, bench.report.plots, "
            "bench.report.significance, bench.report.tables, bench.analysis.stats, bench.analysis.metrics; "
            "print(sorted(m for m in ('torch', 'mmengine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
