"""The interactive page (``index.html``) without a browser: its leaderboards are plain HTML tables whose text,
sort values, best marks and published columns are checked against values computed here from the records; the
page loads nothing from the network, the same records give the same bytes, and ``records_frame`` returns one
row per record. The browser tests are in test_report_page_browser.py."""

import json
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.report import RecordError, find_records, read_records, records_frame, write_report
from bench.report.build import all_sections
from bench.report.page.payload import page_data
from tests.test_report import scores_like, write_cell

PUBLISHED_DUALCOOP_VOC = 94.18  # bench/data/published/published.csv: dualcoop, voc2007, partial 0.5, RN101 @ 448


def make_work(root: Path) -> Path:
    """A small work dir: coco2014 with coop (3 seeds) and dualcoop (2 seeds) at ratios 0.1 and 0.5, zero-shot
    CLIP, T2I-PAL and one ablation variant, a failed cell; voc2007 with a DualCoOp cell matching a published
    setup. Every mAP differs."""
    for ratio in (0.1, 0.5):
        for seed in (1, 2, 3):
            write_cell(root, "coop", ratio=ratio, seed=seed, scores=scores_like(0.4 + ratio, seed),
                       protocol={"mode": "cached", "views": 1}, seconds={"train": 2.0 + seed, "eval": 0.5})
        for seed in (1, 2):
            write_cell(root, "dualcoop", ratio=ratio, seed=seed, scores=scores_like(0.9 + ratio, 10 + seed),
                       protocol={"mode": "cached", "views": 1})
    write_cell(root, "zsclip", "zero-shot", None, scores=scores_like(0.5, 20))
    for seed in (1, 2):
        write_cell(root, "t2ipal", "zero-shot", None, seed, method_type="t2ipal", scores=scores_like(0.7, 30 + seed))
    write_cell(root, "t2ipal_no_adapter", "zero-shot", None, method_type="t2ipal", hparams={"adapter": None},
               scores=scores_like(0.6, 40))
    write_cell(root, "clip_lora", status="failed", error="RuntimeError: out of memory </script> <b>")
    write_cell(root, "dualcoop", dataset="voc2007", backbone=("RN101", "openai"), resolution=448,
               protocol={"mode": "cached", "views": 1}, scores=scores_like(1.0, 50))
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = make_work(tmp_path_factory.mktemp("page") / "work")
    records = read_records(find_records(work))
    out = work.parent / "report"
    write_report(records, out, ("html",), n_boot=50)
    return work, records, out / "index.html"


class Tables(HTMLParser):
    """Every <table> of a page: id, caption, header texts, rows of (row attributes, [(cell attributes, text)])."""

    def __init__(self):
        super().__init__()
        self.tables, self.links, self._cell = {}, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "img", "iframe", "a"):
            self.links += [attrs[k] for k in ("src", "href") if attrs.get(k)]
        if tag == "table":
            self._table = {"id": attrs.get("id"), "caption": "", "headers": [], "rows": []}
            self.tables[attrs.get("id") or f"table{len(self.tables)}"] = self._table
        elif tag == "tr":
            self._table["rows"].append((attrs, []))
        elif tag in ("td", "th", "caption"):
            self._cell, self._attrs, self._text = tag, attrs, ""

    def handle_data(self, data):
        if self._cell:
            self._text += data

    def handle_endtag(self, tag):
        if tag == self._cell:
            if tag == "caption":
                self._table["caption"] = self._text
            elif tag == "th":
                self._table["headers"].append(self._text)
            else:
                self._table["rows"][-1][1].append((self._attrs, self._text))
            self._cell = None


def parse(page: Path) -> Tables:
    parser = Tables()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def maps_of(work: Path, method: str, cell: str, dataset: str = "coco2014") -> list[float]:
    setting, _, ratio = cell.partition(" ")
    out = []
    for path in sorted((work / "run" / "records" / dataset).glob(f"{method}__*.json")):
        rec = json.loads(path.read_text())
        if rec["status"] == "ok" and rec["setting"] == setting and (not ratio or rec["label_ratio"] == float(ratio)):
            out.append(rec["mAP"])
    return out


def test_leaderboard_is_a_plain_table_with_the_records_numbers(report):
    work, _, page = report
    board = parse(page).tables["lb-coco2014-partial"]
    assert board["headers"] == ["label ratio", "method", "backbone", "protocol", "seeds", "mAP (%)",
                                "trainable params", "seconds per cell"]  # no published match on coco: no column
    rows = [(attrs, [text for _, text in cells], cells) for attrs, cells in board["rows"][1:]]
    assert [(r[1][0], r[1][1]) for r in rows] == [("0.1", "dualcoop"), ("0.1", "coop"), ("0.5", "dualcoop"),
                                                  ("0.5", "coop")]  # by point, best mean first
    for attrs, texts, cells in rows:
        maps = maps_of(work, texts[1], f"partial {texts[0]}")
        assert texts[4] == f"{len(maps)} ({','.join(str(s) for s in range(1, len(maps) + 1))})"
        assert texts[5] == f"{statistics.mean(maps):.2f} ± {statistics.stdev(maps):.2f}"
        assert float(cells[5][0]["data-order"]) == pytest.approx(statistics.mean(maps), abs=1e-12)
        assert ("best" in cells[5][0].get("class", "")) == (texts[1] == "dualcoop")  # the best mean per point
        assert attrs["data-method"] == texts[1] and attrs["data-protocol"] == "cached K=1"
        assert len(attrs["data-records"].split()) == len(maps)
    coop = next(r for r in rows if r[1][:2] == ["0.1", "coop"])
    seconds = statistics.mean(2.0 + s + 0.5 for s in (1, 2, 3))  # each record's phases summed, then averaged
    assert float(coop[2][7][0]["data-order"]) == pytest.approx(seconds) and coop[1][7] == f"{seconds:.3g}"


def test_published_number_and_difference_where_the_setup_matches(report):
    work, _, page = report
    board = parse(page).tables["lb-voc2007-partial"]
    assert board["headers"][-2:] == ["published", "ours − published"]
    [(_, cells)] = board["rows"][1:]
    ours = maps_of(work, "dualcoop", "partial 0.5", "voc2007")[0]
    assert cells[8][1] == f"{PUBLISHED_DUALCOOP_VOC:.2f} [A]" and "TaI-DPT@1333eca" in cells[8][0]["title"]
    assert cells[9][1] == f"{ours - PUBLISHED_DUALCOOP_VOC:.2f}"


def test_zero_shot_zsl_failed_and_escaping(report):
    work, _, page = report
    tables = parse(page)
    zero = tables.tables["lb-coco2014-zero-shot"]
    methods = [cells[0][1] for _, cells in zero["rows"][1:]]
    assert methods == ["t2ipal", "t2ipal_no_adapter", "zsclip"]  # by mean, best first (variants are rows too)
    assert [cells[4][1] for _, cells in zero["rows"][1:]][-1] == f"{maps_of(work, 'zsclip', 'zero-shot')[0]:.2f}"
    text = page.read_text(encoding="utf-8")
    assert "out of memory \\u003c/script> \\u003cb>" in text  # the error is data, never markup
    failed = next(t for t in tables.tables.values() if t["caption"] == "Failed records")
    assert [c[1] for c in failed["rows"][1][1]][:2] == ["coco2014", "clip_lora"]


def test_offline_and_deterministic(report, tmp_path):
    _, records, page = report
    links = parse(page).links
    assert links and all(link.startswith("#") for link in links)  # only in-page anchors; nothing is fetched
    again = tmp_path / "again"
    write_report(records, again, ("html",), n_boot=50)
    assert (again / "index.html").read_bytes() == page.read_bytes()


def test_records_frame_is_what_the_tables_are_built_from(report, tmp_path):
    work, records, _ = report
    frame = records_frame(work)
    assert len(frame) == len(find_records(work)) == 16  # every cell record, the failed one included
    assert list(frame.columns[:len(records.cells.columns)]) == list(records.cells.columns)
    pd.testing.assert_frame_equal(frame[records.cells.columns], records.cells)
    assert set(frame.git_commit) == {"abc123"} and frame.loc[frame.method == "clip_lora", "status"].item() == "failed"
    bad = work / "run" / "records" / "coco2014" / "zz_bad.json"
    bad.write_text("{")
    try:
        with pytest.raises(RecordError, match="zz_bad.json"):
            records_frame(work)
        assert records_frame(work, skip_bad=True).attrs["bad"].keys() == {str(bad)}
    finally:
        bad.unlink()
    with pytest.raises(FileNotFoundError, match="no records under"):
        records_frame(tmp_path)


def test_comparison_rows_are_the_significance_rows(report):
    _, records, _ = report
    sections = {s.name: s for s in all_sections(records, n_boot=50)}
    data = page_data(records, sections)["compare"]
    significance = sections["significance"].data
    assert len(data["tests"]) == len(significance)
    for test, row in zip(data["tests"], significance.itertuples()):
        assert test["key"] == [row.method, row.backbone, row.protocol] and test["diff"] == f"{row.diff:.2f}"
        assert test["ci"] == f"[{row.ci_low:.2f}, {row.ci_high:.2f}]"
        assert test["reference_key"][0] == row.reference  # one row of the reference method per cell here


def test_html_is_a_default_format_and_linked_from_the_index(tmp_path):
    work = tmp_path / "work_dirs"
    write_cell(work, "coop", seed=1)
    write_cell(work, "zsclip", "zero-shot", None)
    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "all"), "--n-boot", "0"]) == 0
    assert "[index.html](index.html)" in (tmp_path / "all" / "README.md").read_text()
    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "md"), "--format", "md",
                 "--n-boot", "0"]) == 0
    assert not (tmp_path / "md" / "index.html").exists()


def test_zsl_and_gzsl_leaderboards_show_the_records_blocks(tmp_path):
    blocks = {"coop": (40.0, 35.0), "dualcoop": (45.5, 30.25)}  # (zsl mAP, gzsl F1@3) of one seed each
    for method, (zsl_map, gzsl_f1) in blocks.items():
        path = write_cell(tmp_path, method, "zsl", None)
        record = json.loads(path.read_text())
        record["zsl"] = {"mAP": zsl_map, "P@3": 1.0, "R@3": 2.0, "F1@3": 3.0, "P@5": 4.0, "R@5": 5.0, "F1@5": 6.0}
        record["gzsl"] = {"mAP": 20.0, "P@3": 1.0, "R@3": 2.0, "F1@3": gzsl_f1, "P@5": 4.0, "R@5": 5.0, "F1@5": 6.0}
        path.write_text(json.dumps(record))
    write_report(read_records(find_records(tmp_path)), tmp_path / "rep", ("html",), n_boot=0)
    tables = parse(tmp_path / "rep" / "index.html").tables
    zsl, gzsl = tables["lb-coco2014-ZSL"], tables["lb-coco2014-GZSL"]
    assert zsl["headers"] == ["method", "backbone", "protocol", "seeds", "mAP", "P@3", "R@3", "F1@3", "P@5", "R@5",
                              "F1@5", "trainable params", "seconds per cell"]
    rows = {cells[0][1]: cells for _, cells in zsl["rows"][1:]}
    for method, (zsl_map, _) in blocks.items():
        assert rows[method][4][1] == f"{zsl_map:.2f}" and float(rows[method][4][0]["data-order"]) == zsl_map
    assert [m for m, cells in rows.items() if "best" in cells[4][0].get("class", "")] == ["dualcoop"]
    best_f1 = [cells[0][1] for _, cells in gzsl["rows"][1:] if "best" in cells[7][0].get("class", "")]
    assert best_f1 == ["coop"]
