"""The gaps & leakage section of ``bench report``, from diagnostics records (``"kind": "diagnostics"``):
the image/text modality gap for real and generated images, the synthetic/real domain gap (Fréchet
distance, next to the real train/test distance as a yardstick), and generated images that nearly
duplicate test images."""

from __future__ import annotations

import pandas as pd

from bench.report.format import MISSING, Section, Table, fmt_count, fmt_number, is_missing
from bench.report.model import Records, backbone_name

NEAR_DUPLICATES_SHOWN = 20
MODALITY_PAIRS = {"real_images_vs_captions": "real images vs captions",
                  "generated_images_vs_captions": "generated images vs captions"}
GAP_STATS = {"centroid_distance": "centroid distance", "mean_paired_cosine": "paired cosine",
             "mean_image_image_cosine": "image-image cosine", "mean_text_text_cosine": "text-text cosine"}


def generator_name(identity: dict | None) -> str:
    """A generator identity dict as ``name (key=value, ...)``; ``-`` for none (real images only)."""
    if not identity:
        return MISSING
    rest = {k: v for k, v in identity.items() if k not in ("generator", "type")}
    name = identity.get("generator") or identity.get("type") or "generator"
    return f"{name} ({', '.join(f'{k}={v}' for k, v in rest.items())})" if rest else str(name)


def describe(rec: dict) -> dict:
    """The columns that say which diagnostics record a row comes from."""
    return {"dataset": rec["dataset"], "backbone": backbone_name(rec) if rec.get("backbone") else MISSING,
            "generator": generator_name(rec.get("generator"))}


def modality_rows(diagnostics: dict[str, dict]) -> list[dict]:
    rows = []
    for rec in diagnostics.values():
        for key, pair in MODALITY_PAIRS.items():
            stats = (rec.get("modality_gap") or {}).get(key)
            if stats:
                rows.append({**describe(rec), "pair": pair, **{k: stats.get(k) for k in GAP_STATS},
                             "n_pairs": stats.get("n_pairs")})
    return rows


def domain_rows(diagnostics: dict[str, dict]) -> list[dict]:
    rows = []
    for rec in diagnostics.values():
        domain, leakage = rec.get("domain_gap") or {}, rec.get("leakage") or {}
        if not domain and not leakage:
            continue
        rows.append({**describe(rec),
                     "frechet_generated_vs_real": domain.get("frechet_generated_vs_real"),
                     "frechet_real_train_vs_real_test": domain.get("frechet_real_train_vs_real_test"),
                     "n_generated": domain.get("n_generated", leakage.get("n_generated")),
                     "n_real": domain.get("n_real"), "n_test": leakage.get("n_test"),
                     "threshold": leakage.get("threshold"), "n_near_duplicates": leakage.get("n_near_duplicates"),
                     "max_similarity": leakage.get("max_similarity")})
    return rows


def gaps_section(records: Records) -> Section:
    """Three tables: modality gap (per record and pair), domain gap & leakage (per record), and the
    top near-duplicate pairs of each record that lists them."""
    ok = {p: r for p, r in records.diagnostics.items() if r.get("status") == "ok"}
    heading = "Gaps and leakage"
    if not ok:
        return Section("gaps", heading, "No diagnostics records.")
    tables = []
    modality = pd.DataFrame(modality_rows(ok))
    if len(modality):
        text = modality[["dataset", "backbone", "generator", "pair"]].copy()
        for key, title in GAP_STATS.items():
            text[title] = modality[key].map(lambda v: fmt_number(v, 3))
        text["pairs"] = modality.n_pairs.map(lambda v: fmt_count(v, thousands=False))
        tables.append(Table("Modality gap (L2-normalised features)", text, label_columns=4))
    domain = pd.DataFrame(domain_rows(ok))
    if len(domain):
        text = domain[["dataset", "backbone", "generator"]].copy()
        text["Fréchet generated vs real"] = domain.frechet_generated_vs_real.map(lambda v: fmt_number(v, 3))
        text["Fréchet real train vs test"] = domain.frechet_real_train_vs_real_test.map(lambda v: fmt_number(v, 3))
        text["generated"] = domain.n_generated.map(lambda v: fmt_count(v, thousands=False))
        text["real"] = domain.n_real.map(lambda v: fmt_count(v, thousands=False))
        text["near duplicates"] = [fmt_count(n, thousands=False) if is_missing(t)
                                   else f"{fmt_count(n, thousands=False)} (cos ≥ {fmt_number(t, 3)})"
                                   for n, t in zip(domain.n_near_duplicates, domain.threshold)]
        text["max cosine"] = domain.max_similarity.map(lambda v: fmt_number(v, 3))
        tables.append(Table("Domain gap and leakage", text, label_columns=3))
    duplicates = []
    for rec in ok.values():
        found = sorted((rec.get("leakage") or {}).get("near_duplicates") or [], key=lambda d: -d["cosine"])
        if found:
            shown = found[:NEAR_DUPLICATES_SHOWN]
            frame = pd.DataFrame({"rank": [str(i + 1) for i in range(len(shown))],
                                  "generated": [d["generated"] for d in shown], "test": [d["test"] for d in shown],
                                  "cosine": [fmt_number(d["cosine"], 4) for d in shown]})
            describe_rec = describe(rec)
            tables.append(Table(f"Near duplicates, {describe_rec['dataset']} ({describe_rec['generator']}): "
                                f"top {len(shown)} of {len(found)} listed", frame, label_columns=3))
            duplicates += [{**describe_rec, **d} for d in found]
    intro = ("From diagnostics records. Modality gap: distance between the mean L2-normalised image and caption "
             "features, the mean cosine of paired image/caption features and the mean cosine within each "
             "modality. Domain gap: Fréchet distance between generated and real image features, next to the one "
             "between real train and real test features (what two samples of the same domain give). Leakage: "
             "generated images whose feature is within the cosine threshold of a test image's.")
    data = pd.concat([modality.assign(table="modality_gap"), domain.assign(table="domain_gap"),
                      pd.DataFrame(duplicates).assign(table="near_duplicates")], ignore_index=True)
    return Section("gaps", heading, intro, tables, data)
