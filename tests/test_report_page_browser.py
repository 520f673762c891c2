"""The interactive page in a real browser: the operating system's headless Chromium driven by Selenium
(:mod:`bench.headless`). The page loads with no console error; sorting a column orders the rows as the records
say; a filter hides the rows it should; each plot has one series per method; choosing two methods shows the
difference the significance table has; opening a row shows its records' config hashes. A screenshot is saved
beside the report (``page.png``; ``BENCH_SCREENSHOTS=DIR`` copies it there). Without Chromium every test
skips with one line saying how to install it."""

import json
import os
import shutil
import statistics

import pytest

from bench.headless import INSTALL, chromium_paths, console_errors, headless_chromium, open_page
from bench.report import find_records, read_records, write_report
from bench.report.build import all_sections
from tests.test_report_page import make_work, maps_of

pytestmark = pytest.mark.skipif(chromium_paths() is None, reason=INSTALL)
N_BOOT = 50


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = make_work(tmp_path_factory.mktemp("browser") / "work")
    records = read_records(find_records(work))
    out = work.parent / "report"
    write_report(records, out, ("html",), n_boot=N_BOOT)
    with headless_chromium() as driver:
        timings = open_page(driver, out / "index.html")
        yield {"work": work, "records": records, "out": out, "driver": driver, "timings": timings,
               "errors": console_errors(driver)}


def visible_rows(driver, table_id: str) -> list[list[str]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr'))"
        ".map(tr => Array.from(tr.children).map(td => td.textContent));", f"#{table_id}")


def click(driver, selector: str) -> None:
    driver.execute_script("document.querySelector(arguments[0]).click();", selector)


def choose(driver, select_id: str, value: str) -> None:
    driver.execute_script("const s = document.getElementById(arguments[0]); s.value = arguments[1];"
                          "s.dispatchEvent(new Event('change'));", select_id, value)


def test_loads_without_console_errors_and_saves_a_screenshot(site):
    driver = site["driver"]
    assert site["errors"] == []
    assert site["timings"]["ready"] > 0 and driver.execute_script("return document.body.classList.contains('nojs')") \
        is False
    assert driver.execute_script("return document.querySelectorAll('.dt-container table.dt').length") == \
        len(driver.find_elements("css selector", "table.dt"))  # every leaderboard became a DataTable
    shot = site["out"] / "page.png"
    driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("BENCH_SCREENSHOTS"):
        shutil.copy(shot, os.environ["BENCH_SCREENSHOTS"])


def test_sorting_a_column_orders_rows_as_the_records_say(site):
    driver, work = site["driver"], site["work"]
    header = "#lb-coco2014-partial thead th:nth-child(6)"  # mAP (%)
    expected = sorted(((f"partial {p}", m) for p in ("0.1", "0.5") for m in ("coop", "dualcoop")),
                      key=lambda cell: statistics.mean(maps_of(work, cell[1], cell[0])))
    click(driver, header)  # ascending
    rows = visible_rows(driver, "lb-coco2014-partial")
    assert [(f"partial {r[0]}", r[1]) for r in rows] == expected
    click(driver, header)  # descending
    assert [(f"partial {r[0]}", r[1]) for r in visible_rows(driver, "lb-coco2014-partial")] == expected[::-1]


def test_a_filter_hides_the_rows_it_should(site):
    driver = site["driver"]
    choose(driver, "filter-method", "coop")
    try:
        assert [r[1] for r in visible_rows(driver, "lb-coco2014-partial")] == ["coop", "coop"]
        zero = visible_rows(driver, "lb-coco2014-zero-shot")
        assert len(zero) == 1 and "No matching records" in zero[0][0]  # no coop row in zero-shot
    finally:
        choose(driver, "filter-method", "")
    assert len(visible_rows(driver, "lb-coco2014-partial")) == 4


def test_each_plot_has_one_series_per_method(site):
    driver, records = site["driver"], site["records"]
    driver.execute_script("window.benchPage.drawAllPlots();")
    series = driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('.plot')).map(d => [d.dataset.figure,"
        " Array.from(new Set(d.data.map(t => t.meta).filter(m => m !== 'pareto front'))).sort()]));")
    ok = records.ok()
    coco = ok[ok.dataset == "coco2014"]
    curve_methods = sorted(set(coco.method) - {"t2ipal_no_adapter"})  # ablation variants are left out
    assert series["coco2014|curves|partial"] == curve_methods
    assert series["coco2014|pareto|zero-shot"] == sorted(set(coco[coco.setting == "zero-shot"].method))
    assert series["coco2014|ablation|zero-shot"] == ["t2ipal", "t2ipal_no_adapter"]
    assert series["voc2007|curves|partial"] == ["dualcoop"]
    assert console_errors(driver) == []


def test_comparing_two_methods_shows_the_significance_row(site):
    driver, records = site["driver"], site["records"]
    significance = {s.name: s for s in all_sections(records, n_boot=N_BOOT)}["significance"].data
    row = significance[(significance.dataset == "coco2014") & (significance.cell == "partial 0.1")].iloc[0]
    choose(driver, "compare-a", f"{row.reference}|RN50@openai|cached K=1")
    choose(driver, "compare-b", f"{row.method}|{row.backbone}|{row.protocol}")
    rows = {(r[0], r[1]): r for r in visible_rows(driver, "compare-table")}
    shown = rows[("coco2014", "partial 0.1")]
    assert shown[4:8] == [f"{row.method} − {row.reference}", f"{row['diff']:.2f}",
                          f"[{row.ci_low:.2f}, {row.ci_high:.2f}]", f"{row.p_value:.3f}"]
    assert shown[8] == ("yes" if row.significant else "no")


def test_opening_a_row_shows_its_records(site):
    driver, work = site["driver"], site["work"]
    driver.execute_script("document.querySelector('#lb-coco2014-partial tbody tr').click();")
    first = visible_rows(driver, "lb-coco2014-partial")[0]
    panel = driver.find_element("id", "record-panel")
    assert panel.is_displayed()
    folder = work / "run" / "records" / "coco2014"
    expected = sorted(json.loads(p.read_text())["config_hash"]
                      for p in folder.glob(f"{first[1]}__partial_r{first[0]}__s*.json"))
    hashes = driver.execute_script("return Array.from(document.querySelectorAll('#record-panel table.fields tr'))"
                                   ".filter(tr => tr.firstChild.textContent === 'config hash')"
                                   ".map(tr => tr.lastChild.textContent);")
    assert sorted(hashes) == expected and len(expected) == int(first[4].split()[0])
    driver.execute_script("document.querySelector('#record-panel .close').click();")
    assert not panel.is_displayed()


def test_records_table_and_per_class_sorting(site):
    driver, records = site["driver"], site["records"]
    assert driver.execute_script("return window.benchPage.records.rows().count()") == len(records.cells)
    failed = driver.execute_script("return window.benchPage.records.rows().data().toArray()"
                                   ".filter(r => r[4] !== 'ok').map(r => r[13]);")
    assert failed == ["RuntimeError: out of memory </script> <b>"]
    choose(driver, "per-class-choice", "1")  # coco2014, partial 0.1
    click(driver, "#per-class-table thead th:nth-child(2)")
    column = driver.execute_script("return window.benchPage.perClass.column(1).header().textContent")
    rows = visible_rows(driver, "per-class-table")
    values = [float(r[1]) for r in rows]
    assert values == sorted(values) and column in ("coop", "dualcoop")
    record_aps = {}
    for path in records.ok()[(records.ok().method == column) & (records.ok().cell == "partial 0.1")].path:
        for name, ap in records.raw[path]["per_class_AP"].items():
            record_aps.setdefault(name, []).append(ap)
    assert {r[0]: r[1] for r in rows} == {name: f"{statistics.mean(v):.2f}" for name, v in record_aps.items()}
