"""The significance section of ``bench report``: per dataset and cell, every method against a reference
by a bootstrap over training seeds and test images of their saved score matrices (:mod:`bench.analysis.stats`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.stats import seeds_and_images_bootstrap
from bench.records import Resamples, ScoresError, record_resamples
from bench.report.format import MISSING, Section, fmt_number, with_label_columns
from bench.report.model import ROW_KEY, Records, cell_groups, row_labels, seed_groups


def load_group(paths: list[str], n_boot: int, boot_seed: int, bad: dict[str, str] | None = None
               ) -> tuple[np.ndarray | None, np.ndarray | None, Resamples | None, str]:
    """The bootstrap resamples of a row's seeds (:func:`bench.records.record_resamples`: stored beside each
    record when its cell finished, else computed once and stored): observed mAP per seed [S], mAP per seed and
    resample [S, n_boot], the first seed's resamples (for its test-set digests), and a note ("" when all
    loaded and every seed was evaluated on the same labels and images). An unreadable scores file is named in
    the note and added to ``bad`` (path -> why; :attr:`Records.bad`)."""
    try:
        found = [record_resamples(p, n_boot, boot_seed) for p in paths]
    except ScoresError as exc:  # missing or unreadable scores file
        if bad is not None:
            bad[exc.path] = f"scores file {exc.reason}"
        return None, None, None, f"no readable saved test scores ({exc})"
    if not all(found[0].same_test_set(other) for other in found[1:]):
        return None, None, None, "its seeds were evaluated on different test labels"
    return np.array([r.observed for r in found]), np.stack([r.values for r in found]), found[0], ""


def choose_reference(means: dict[tuple, float], reference: str | None) -> tuple | None:
    """The row key with the best mean mAP, among the rows of method ``reference`` when given (None when absent)."""
    candidates = [k for k in means if reference is None or k[0] == reference]
    return max(candidates, key=lambda k: (means[k], k)) if candidates else None


def significance_rows(records: Records, dataset: str, cell: str, reference: str | None, n_boot: int,
                      boot_seed: int) -> tuple[tuple | None, list[dict]]:
    """(reference row key, one comparison dict per other row) for one dataset and cell."""
    ok = records.ok()
    groups = seed_groups(ok[(ok.dataset == dataset) & (ok.cell == cell)])
    means = {k: float(np.mean([records.raw[p]["mAP"] for p in paths])) for k, paths in groups.items()}
    ref_key = choose_reference(means, reference)
    if ref_key is None or len(groups) < 2:
        return ref_key, []
    ref_observed, ref_values, ref_test, ref_note = load_group(groups[ref_key], n_boot, boot_seed, records.bad)
    seeds_of = {k: [records.raw[p]["seed"] for p in paths] for k, paths in groups.items()}
    out = []
    for key in sorted(groups, key=lambda k: -means[k]):
        if key == ref_key:
            continue
        row = {"dataset": dataset, "cell": cell, "method": key[0], "backbone": key[1], "protocol": key[2],
               "reference": ref_key[0], "n_seeds": len(groups[key]), "n_seeds_reference": len(groups[ref_key]),
               "mAP": means[key], "mAP_reference": means[ref_key], "n_boot": n_boot, "note": ""}
        observed, values, test, note = load_group(groups[key], n_boot, boot_seed, records.bad)
        if ref_note:
            note = f"reference: {ref_note}"
        elif not note and not ref_test.same_test_set(test):
            note = "test labels or image order differ from the reference's"
        if note:
            out.append({**row, "note": note})
            continue
        # the same seed ids (the same partial-label masks / few-shot images): resample them together
        result = seeds_and_images_bootstrap(observed, values, ref_observed, ref_values, boot_seed,
                                            paired_seeds=seeds_of[key] == seeds_of[ref_key])
        out.append({**row, "diff": result.observed, "boot_mean": result.boot_mean, "ci_low": result.ci_low,
                    "ci_high": result.ci_high, "p_value": result.p_value, "significant": result.significant})
    return ref_key, out


def fmt_p(p: float, n_boot: int) -> str:
    if p != p:
        return MISSING
    return f"<{1 / n_boot:.2g}" if p == 0 else f"{p:.3f}"


def significance_section(records: Records, reference: str | None = None, n_boot: int = 1000,
                         boot_seed: int = 0) -> Section:
    """Per dataset and cell, every method vs the reference (``reference`` by name, else the best mean):
    :func:`bench.analysis.stats.seeds_and_images_bootstrap_map` over training seeds and test images, 95% CI, p-value
    (from the resamples stored beside each record)."""
    heading = "Significance: bootstrap over seeds and test images vs a reference"
    if n_boot <= 0:
        return Section("significance", heading, "Skipped (--n-boot 0).")
    rows, tables = [], []
    for dataset, cell in cell_groups(records.ok()):
        ref_key, comparisons = significance_rows(records, dataset, cell, reference, n_boot, boot_seed)
        if not comparisons:
            continue
        frame = pd.DataFrame(comparisons)
        for col in ("diff", "ci_low", "ci_high", "p_value", "significant"):
            if col not in frame:
                frame[col] = np.nan
        text = pd.DataFrame({
            "seeds": [f"{a} / {b}" for a, b in zip(frame.n_seeds, frame.n_seeds_reference)],
            "mAP": frame.mAP.map(fmt_number), "reference mAP": frame.mAP_reference.map(fmt_number),
            "Δ mAP": frame["diff"].map(fmt_number),
            "95% CI": [MISSING if lo != lo else f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(frame.ci_low, frame.ci_high)],
            "p": [fmt_p(p, n_boot) for p in frame.p_value],
            "significant": [s.note or ("yes" if s.significant is True else "no") for s in frame.itertuples()],
        })
        table = with_label_columns(pd.DataFrame({"method": row_labels(frame[ROW_KEY])}), text)
        table.title = f"{dataset}, {cell}: vs {ref_key[0]} ({ref_key[1]}, {ref_key[2]})"
        tables.append(table)
        rows += comparisons
    how = f"`{reference}`" if reference else "the method with the best mean mAP in that cell"
    intro = (f"Each method against {how}: mAP difference (method - reference, mAP points) of the seed-averaged "
             f"mAPs. Two-level bootstrap ({n_boot} resamples, seed {boot_seed}): each resample draws the test "
             "images with replacement (the same draw for both methods; classes without a positive in it left out "
             "of both) and each method's seeds with replacement (the same draw for both when they ran the same "
             "seeds), so the interval covers seed-to-seed variation as well as test-image sampling; with one seed "
             "it covers test images only (the 'seeds' column says how many). 95% percentile interval; two-sided p "
             "(resampled differences on the other side of 0, doubled). Significant when the interval excludes 0.")
    if not tables:
        intro = "No cell has two methods with saved test scores to compare."
    return Section("significance", heading, intro, tables, pd.DataFrame(rows) if rows else None)
