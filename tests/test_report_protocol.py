"""The papers' protocol in ``bench report``: averages over ratios / shot counts / datasets (against a hand
computation), published numbers joined to matching runs, the mAP-vs-K plot, the ablation's leakage column."""

import json
import statistics

import pytest

from bench.report.averages import averages_section
from bench.report.build import comparable, write_report
from bench.report.model import find_records, read_records
from bench.report.published import PUBLISHED_CSV, load_published, published_section
from bench.report.tables import ablation_section
from tests.test_report import scores_like, table_cell, write_cell

RATIOS = [0.1, 0.5, 0.9]


def _map(path) -> float:
    return json.loads(path.read_text())["mAP"]


def test_averages_over_ratios_shots_and_datasets_by_hand(tmp_path):
    maps = {}
    for dataset in ("coco2014", "voc2007"):
        for seed in ((1, 2) if dataset == "coco2014" else (1,)):
            for i, ratio in enumerate(RATIOS):
                path = write_cell(tmp_path, "coop", ratio=ratio, seed=seed, dataset=dataset,
                                  scores=scores_like(0.2 + 0.3 * i, seed * 10 + i))
                maps[(dataset, seed, ratio)] = _map(path)
    for ratio in RATIOS[:2]:  # dualcoop misses 0.9 on coco: no average there
        write_cell(tmp_path, "dualcoop", ratio=ratio, seed=1, scores=scores_like(0.5, 7))
    shots = {k: _map(write_cell(tmp_path, "coop", "fewshot", None, seed=1, shots=k, scores=scores_like(k / 8, k)))
             for k in (1, 4, 16)}
    records = read_records(find_records(tmp_path))
    section = averages_section(records)
    data = section.data.set_index(["dataset", "method", "setting"])
    per_seed = {s: statistics.mean(maps[("coco2014", s, r)] for r in RATIOS) for s in (1, 2)}
    coco = statistics.mean(statistics.mean(maps[("coco2014", s, r)] for s in (1, 2)) for r in RATIOS)
    voc = statistics.mean(maps[("voc2007", 1, r)] for r in RATIOS)
    assert data.loc[("coco2014", "coop", "partial"), "avg"] == pytest.approx(coco)
    assert data.loc[("coco2014", "coop", "partial"), "std"] == pytest.approx(statistics.stdev(per_seed.values()))
    assert data.loc[("coco2014", "coop", "fewshot"), "avg"] == pytest.approx(statistics.mean(shots.values()))
    assert data.loc[("coco2014", "coop", "fewshot"), "points"] == "1,4,16"
    assert ("coco2014", "dualcoop", "partial") not in data.index
    assert data.loc[("coco2014", "coop", "partial"), "avg_across_datasets"] == pytest.approx((coco + voc) / 2)
    partial = next(t for t in section.tables if "partial" in t.title)
    assert table_cell(partial, "coop", "coco2014") == f"{coco:.2f} ± {statistics.stdev(per_seed.values()):.2f}"
    assert table_cell(partial, "coop", "Avg.") == f"{(coco + voc) / 2:.2f}"
    assert "dualcoop" not in set(partial.frame.method)  # no ratio set complete anywhere: no row
    fewshot = next(t for t in section.tables if "fewshot" in t.title)
    assert table_cell(fewshot, "coop", "Avg.") == f"{statistics.mean(shots.values()):.2f}"  # one dataset has K


def test_published_numbers_join_matching_runs_only(tmp_path):
    published = load_published()
    row = published[(published.method == "dualcoop") & (published.dataset == "voc2007")
                    & (published.label_ratio == "0.5")].iloc[0]
    assert (row.backbone, row.resolution) == ("RN101", "448") and row.source.startswith("[A]")
    ours = {}
    for ratio in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:  # every ratio: the "avg" row matches too
        ours[ratio] = _map(write_cell(tmp_path, "dualcoop", ratio=ratio, dataset="voc2007", resolution=448,
                                      backbone=("RN101", "openai"), scores=scores_like(1.0 + ratio, 3)))
    write_cell(tmp_path, "taidpt", "zero-shot", None, dataset="voc2007", scores=scores_like(0.8, 4))
    fused = _map(write_cell(tmp_path, "taidpt+dualcoop", ratio=0.5, dataset="voc2007", backbone=("RN50+RN101", "x"),
                            backbone_parts=[("RN50", 224), ("RN101", 448)], scores=scores_like(2.0, 5)))
    write_cell(tmp_path, "dualcoop", ratio=0.5, dataset="coco2014")  # RN50@224: the coco rows stay unmatched
    section = published_section(comparable(read_records(find_records(tmp_path))))
    data = section.data
    matched = data[data.table == "matched"].set_index(["method", "point"])
    assert matched.loc[("dualcoop", "0.5"), "published"] == 94.18
    assert matched.loc[("dualcoop", "0.5"), "diff"] == pytest.approx(ours[0.5] - 94.18)
    assert matched.loc[("dualcoop", "avg"), "diff"] == pytest.approx(statistics.mean(ours.values()) - 93.2)
    assert matched.loc[("taidpt+dualcoop", "0.5"), "diff"] == pytest.approx(fused - 94.61)
    assert sorted(matched.loc[("taidpt", "")].published) == [88.07, 88.3]  # [A] and [S] rows, both shown
    assert set(matched.index) == {("dualcoop", "0.5"), ("dualcoop", "avg"), ("taidpt+dualcoop", "0.5"),
                                  ("taidpt", "")}
    unmatched = data[data.table == "unmatched"].set_index(["published_method", "dataset"])
    assert "no taidpt run on nuswide" in unmatched.loc[("taidpt", "nuswide"), "reason"]
    reason = unmatched.loc[("dualcoop+taidpt", "coco"), "reason"]
    assert reason == "no dualcoop+taidpt run on coco in the partial setting"
    assert unmatched.loc[("dualcoop", "nuswide"), "reason"] == "no dualcoop run on nuswide in the zsl setting"
    assert len(matched) + len(unmatched) == len(published)
    [shown, missing] = section.tables
    assert table_cell(shown, "taidpt+dualcoop", "ours − published") == f"{fused - 94.61:.2f}"
    assert table_cell(shown, "taidpt+dualcoop", "published") == "94.61 [A]"
    assert table_cell(shown, "taidpt+dualcoop", "backbone") == "RN101@448 + RN50@224"
    assert len(missing.frame) == len(unmatched)


def test_a_mismatched_backbone_is_named_and_a_bad_file_is_an_error(tmp_path):
    write_cell(tmp_path, "dualcoop", ratio=0.5, dataset="voc2007")  # RN50@224, the reference ran RN101@448
    data = published_section(comparable(read_records(find_records(tmp_path)))).data
    row = data[(data.table == "unmatched") & (data.published_method == "dualcoop") & (data.point == "0.5")].iloc[0]
    assert row.reason == "backbone or resolution differ (ran: dualcoop RN50@224)"
    assert not (data.table == "matched").any()
    bad = tmp_path / "published.csv"
    bad.write_text(PUBLISHED_CSV.read_text().replace(",source", ",origin", 1))
    with pytest.raises(ValueError, match=r"published.csv: missing column\(s\) source"):
        load_published(bad)


def test_shot_curve_plot_and_cell_labels(tmp_path):
    for k in (1, 2, 4, 8, 16):
        write_cell(tmp_path, "coop", "fewshot", None, shots=k, dataset="toy", scores=scores_like(k / 8, k))
    write_cell(tmp_path, "zsclip", "zero-shot", None, dataset="toy")
    records = read_records(find_records(tmp_path))
    assert list(records.cells.sort_values("shots").cell.dropna())[:5] == [f"fewshot {k}-shot" for k in (1, 2, 4, 8, 16)]
    written = write_report(records, tmp_path / "report", formats=("md", "csv", "png"), n_boot=0)
    names = {p.name for p in written}
    assert {"map_vs_shots_toy.png", "averages.md", "published.md"} <= names
    results = (tmp_path / "report" / "results.md").read_text()
    assert results.index("fewshot 1-shot") < results.index("fewshot 2-shot") < results.index("fewshot 16-shot")


def test_ablation_states_leakage_and_the_deduplicated_row(tmp_path):
    write_cell(tmp_path, "t2ipal_photo", "zero-shot", None, dataset="toy", method_type="t2ipal")
    write_cell(tmp_path, "t2ipal_photo_dedup", "zero-shot", None, dataset="toy", method_type="t2ipal",
               train_data={"near_duplicates_removed": {"threshold": 0.95, "n_removed": 7}})
    write_cell(tmp_path, "t2ipal", "zero-shot", None, dataset="toy", method_type="t2ipal")
    folder = tmp_path / "run" / "records" / "toy"
    (folder / "diagnostics__t2ipal_photo.json").write_text(json.dumps({
        "kind": "diagnostics", "status": "ok", "dataset": "toy",
        "leakage": {"threshold": 0.95, "n_generated": 2000, "n_near_duplicates": 12}}))
    [table] = ablation_section(read_records(find_records(tmp_path))).tables
    column = "near-duplicates of test images"
    assert table_cell(table, "t2ipal_photo", column) == "12 of 2000 generated (cos ≥ 0.95)"
    assert table_cell(table, "t2ipal_photo_dedup", column) == "7 removed (cos ≥ 0.95)"
    assert table_cell(table, "t2ipal", column) == "-"
