"""Where a report's numbers came from, as markdown lines (the index ``README.md`` and the HTML page say the
same): how many records of each kind, the runs they are in with their bench commits, the datasets."""

from __future__ import annotations

from bench.report.model import Records, is_toy, run_dir


def record_counts(records: Records) -> str:
    """"N cell records (n finished, n failed, n derived by score fusion) and M diagnostics records"."""
    cells = records.cells
    n_ok, n_failed = int((cells.status == "ok").sum()), int((cells.status != "ok").sum())
    return (f"{len(cells)} cell records ({n_ok} finished, {n_failed} failed, {int(cells.derived.sum())} derived by "
            f"score fusion) and {len(records.diagnostics)} diagnostics records")


def run_lines(records: Records) -> list[str]:
    """One markdown list item per run folder: its cell and diagnostics records and bench commit(s)."""
    n_cells = records.cells.groupby("run").size().to_dict()
    n_diagnostics: dict[str, int] = {}
    commits: dict[str, set] = {}
    for path in records.diagnostics:
        n_diagnostics[run_dir(path)] = n_diagnostics.get(run_dir(path), 0) + 1
    for path, rec in [*records.raw.items(), *records.diagnostics.items()]:
        commits.setdefault(run_dir(path), set()).add(str((rec.get("environment") or {}).get("git_commit") or "unknown"))
    return [f"- `{run}`: {n_cells.get(run, 0)} cell records, {n_diagnostics.get(run, 0)} diagnostics "
            f"records; bench commit(s) {', '.join(sorted(commits.get(run, {'unknown'})))}"
            for run in sorted(set(n_cells) | set(n_diagnostics))]


def datasets_line(records: Records) -> str:
    """"Datasets: a, b (toy world: toy)"."""
    cells = records.cells
    datasets = sorted(set(cells.dataset) | {r["dataset"] for r in records.diagnostics.values()})
    toy_sets = sorted(set(cells.loc[cells.toy.astype(bool), "dataset"])
                      | {r["dataset"] for r in records.diagnostics.values() if is_toy(r)})
    return f"Datasets: {', '.join(datasets) or 'none'}" + (f" (toy world: {', '.join(toy_sets)})" if toy_sets else "")


def how_to_read(reference: str | None, n_boot: int, boot_seed: int) -> list[str]:
    """The "How to read" list: what the numbers mean (mean ± std, rows, significance, averages, cost)."""
    return [
        "- mAP in %, mean ± sample standard deviation (ddof=1) over seeds; the std is shown only with more "
        "than one seed. Best per column in bold.",
        "- One row per (method, backbone, image protocol): cached features with K views and online "
        "re-encoding are never averaged together. Fused records (score fusion of two cells) are rows of "
        "their own. A dataset named `<dataset>-<split>` holds results evaluated on that split (e.g. val, "
        "for tuning) instead of the test split.",
        f"- Significance: bootstrap over training seeds and test images ({n_boot} resamples, seed "
        f"{boot_seed}) of the difference in seed-averaged mAP to the reference "
        f"({'`' + reference + '`' if reference else 'the best mean method of each cell'}); 95% percentile "
        "interval; p two-sided; significant when the interval excludes 0. With one seed per method it "
        "reflects test-set sampling only.",
        "- Averages: the papers' \"Avg.\" columns (over label ratios, shot counts, datasets) only for methods "
        "that have every point; published numbers beside ours only where dataset, setting, point, backbone "
        "and input resolution match (the published section lists the setups no run matched).",
        "- Cost: seconds summed over the record's phases (test feature extraction, training-data preparation "
        "incl. generation, training, evaluation). Features are cached, so the first cell of a run pays the "
        "extraction and later cells mostly read it; a fused cell counts the time of its sources.",
        "- Only records are read: nothing is recomputed except bootstrap resamples of saved test scores."]
