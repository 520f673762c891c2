"""The report's figures, inspected as matplotlib objects and as files: series styles, zero-shot reference
lines, the ablation figure, Pareto tick and point labels that never overlap, the index embedding every PNG."""

import re
from itertools import combinations

import numpy as np
import pytest

from bench.report import find_records, read_records, write_report
from bench.report.cost import cost_points
from bench.report.model import aggregate
from bench.report.plots import ablation_plot, pareto_plot, ratio_plot, variant_bases
from bench.report.style import COLOURS, LINESTYLES, boxes_overlap, log_ticks, series_styles, spread
from tests.test_report import scores_like, write_cell

NAMES = ["zsclip", "coop", "cocoop", "dualcoop", "taidpt", "taidpt+dualcoop", "t2ipal", "t2ipal_no_heatmap",
         "t2ipal_no_adapter", "t2ipal_no_t2i", "t2ipal_x2", "t2ipal_x4", "clip_adapter", "clip_lora", "tip_adapter",
         "tip_adapter_f", "linear_probe", "coop [RN50@openai, cached K=1]", "coop [RN101@openai, cached K=1]",
         "positive_coop"]


def test_series_styles_distinct_deterministic_and_order_free():
    styles = series_styles(NAMES)
    assert len(NAMES) == 20 and set(styles) == set(NAMES)
    pairs = [(s.color, s.linestyle) for s in styles.values()]
    assert len(set(pairs)) == 20
    assert {s.color for s in styles.values()} == set(COLOURS)  # all ten colours before any colour repeats
    assert sum(s.linestyle == LINESTYLES[0] for s in styles.values()) == 10  # the first ten are solid
    assert series_styles(list(reversed(NAMES))) == styles  # the set decides, not the order
    # a name alone keeps its hashed colour, the same in every process (crc32, not Python's salted hash)
    assert series_styles(["coop"])["coop"].color == COLOURS[4181462456 % 10]  # zlib.crc32(b"coop")
    assert len({(s.color, s.linestyle) for s in series_styles([f"m{i}" for i in range(40)]).values()}) == 40


def test_log_ticks_and_spread():
    assert log_ticks(0.004, 400) == [0.01, 0.1, 1, 10, 100]
    assert log_ticks(12, 400) == [20, 50, 100, 200]  # one power of ten inside: 1-2-5 steps
    assert log_ticks(25, 80) == [30, 50, 70]  # 1-2-5 steps give only 50: finer steps
    np.testing.assert_allclose(spread([1.0, 1.1, 5.0], 1.0), [0.55, 1.55, 5.0])
    np.testing.assert_allclose(spread([3.0, 0.0, 0.0], 1.0), [3.0, -0.5, 0.5])


def partial_and_zero_shot(root):
    for ratio in (0.1, 0.5, 0.9):
        for seed in (1, 2):
            write_cell(root, "coop", ratio=ratio, seed=seed, scores=scores_like(0.4 + ratio, seed))
        write_cell(root, "dualcoop", ratio=ratio, scores=scores_like(0.2 + ratio, 5))
    for method, quality, base in (("zsclip", 0.3, None), ("taidpt", 0.6, None), ("t2ipal", 0.7, None),
                                  ("t2ipal_no_heatmap", 0.65, "t2ipal"), ("t2ipal_x2", 0.75, "t2ipal")):
        write_cell(root, method, "zero-shot", None, method_type=base, scores=scores_like(quality, 7))
    return read_records(find_records(root))


def test_zero_shot_methods_are_labelled_reference_lines_and_variants_stay_out(tmp_path):
    records = partial_and_zero_shot(tmp_path)
    assert variant_bases(records.ok()) == {"t2ipal_no_heatmap": "t2ipal", "t2ipal_x2": "t2ipal"}
    agg = aggregate(records.cells)
    fig = ratio_plot(agg[~agg.method.isin(variant_bases(records.ok()))], "coco2014")
    ax = fig.axes[0]
    references = {line.get_gid(): line for line in ax.lines if str(line.get_gid()).startswith("zero-shot:")}
    assert set(references) == {"zero-shot:zsclip", "zero-shot:taidpt", "zero-shot:t2ipal"}
    zero = agg[agg.setting == "zero-shot"].set_index("method")["mean"]
    for gid, line in references.items():
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.all(y == zero[gid.split(":")[1]])  # constant at the method's mAP
    texts = [t.get_text() for t in ax.texts]
    for method in ("zsclip", "taidpt", "t2ipal"):
        assert f"{method} {zero[method]:.2f}" in texts
    assert not any("no_heatmap" in t or "x2" in t for t in texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["coop", "dualcoop"]  # lines only
    styles = {(line.get_color(), line.get_linestyle()) for line in ax.lines}
    assert len(styles) == len(ax.lines) == 5


def test_ablation_figure_shows_each_variant_beside_its_base(tmp_path):
    records = partial_and_zero_shot(tmp_path)
    agg = aggregate(records.cells)
    mean = agg.set_index("method")["mean"]
    fig = ablation_plot(agg, "t2ipal", ["t2ipal_x2", "t2ipal_no_heatmap"], "t")
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["t2ipal", "t2ipal_no_heatmap", "t2ipal_x2"]
    delta = mean["t2ipal_no_heatmap"] - mean["t2ipal"]
    assert [t.get_text() for t in ax.texts] == [
        f"{mean['t2ipal']:.2f}", f"{mean['t2ipal_no_heatmap']:.2f} ({delta:+.2f})",
        f"{mean['t2ipal_x2']:.2f} ({mean['t2ipal_x2'] - mean['t2ipal']:+.2f})"]
    [dashed] = [line for line in ax.lines if line.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed.get_xdata(), [mean["t2ipal"]] * 2)  # the base's mean
    assert ablation_plot(agg, "coop", [], "t") is None


def test_index_embeds_every_png_and_the_ablation_figure(tmp_path):
    partial_and_zero_shot(tmp_path / "work")
    out = tmp_path / "rep"
    written = write_report(read_records(find_records(tmp_path / "work")), out, ("md", "png", "pdf"), n_boot=0)
    pngs = {p.name for p in written if p.suffix == ".png"}
    assert pngs == {"map_vs_ratio_coco2014.png", "ablation_t2ipal_coco2014.png", "pareto_coco2014.png"}
    assert pngs == {p.name for p in out.glob("*.png")}
    index = (out / "README.md").read_text()
    assert set(re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", index)) == pngs


def test_pareto_tick_and_point_labels_do_not_overlap(tmp_path):
    costs = [0.02, 0.03, 0.5, 0.6, 0.7, 3.0, 3.5, 4.0, 20.0, 25.0, 30.0, 90.0, 400.0, 2000.0]
    for i, cost in enumerate(costs):
        write_cell(tmp_path, f"method_{i:02d}_long_name", "zero-shot", None, scores=scores_like(0.5 + 0.01 * i, 3),
                   seconds={"train": cost})
    records = read_records(find_records(tmp_path))
    fig = pareto_plot(cost_points(records), "crowded")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    [ax] = [a for a in fig.axes if a.get_visible()]
    tick_boxes = [t.get_window_extent(renderer) for t in ax.xaxis.get_ticklabels(which="both") if t.get_text()]
    assert len(tick_boxes) >= 3  # several decades labelled
    assert not any(boxes_overlap(a, b) for a, b in combinations(tick_boxes, 2))
    label_boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(label_boxes) == len(costs)
    assert not any(boxes_overlap(a, b) for a, b in combinations(label_boxes, 2))
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in label_boxes)


@pytest.mark.parametrize("costs", [[30.0, 45.0, 70.0], [5.0, 6.0]])
def test_pareto_labels_ticks_within_a_decade(tmp_path, costs):
    for i, cost in enumerate(costs):
        write_cell(tmp_path, f"m{i}", seconds={"train": cost}, scores=scores_like(0.3 * i, 1))
    fig = pareto_plot(cost_points(read_records(find_records(tmp_path))), "narrow")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].xaxis.get_ticklabels(which="both") if t.get_text()]
    assert len(labels) >= 2
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(boxes_overlap(a, b) for a, b in combinations(boxes, 2))
