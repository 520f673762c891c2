"""Caption -> label parsing by class-name matching (TaI-DPT ``datasets/*_distill.py``).

Each class has a list of synonyms (data files in ``bench/data/synonyms/<name>.json``, or a
user's own file). As in TaI-DPT: multi-word synonyms are tried first and also registered with
their spaces removed ("hot dog" -> "hotdog"); each match sets the class and is deleted from
the caption, so "hot dog" never also fires "dog". Captions with no match are discarded by
:meth:`CaptionParser.parse_corpus`.

Where we differ: TaI-DPT lemmatises with NLTK (tokenizer, POS tagger and WordNet data,
downloaded at run time). We match surface forms instead, generating plurals with ``inflect``
(which ships its rules), so parsing works offline. Irregular or uncountable forms can be
listed as extra synonyms in the data file.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.data.base import NEGATIVE, POSITIVE, DataError

SYNONYM_DIR = Path(__file__).resolve().parent / "synonyms"
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """Lowercase, every run of non-alphanumerics to one space, padded with spaces for whole-word search."""
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


@lru_cache(maxsize=1)
def inflect_engine():
    """One shared ``inflect`` engine (building one is slow)."""
    import inflect

    return inflect.engine()


@lru_cache(maxsize=1024)
def plural(phrase: str) -> str:
    """Plural of a noun phrase: its last word through inflect's ``plural_noun`` (kept as is where that
    gives nothing), words joined by single spaces. The caption parser and the toy captions both use it."""
    words = phrase.split()
    return " ".join(words[:-1] + [inflect_engine().plural_noun(words[-1]) or words[-1]])


def surface_forms(synonym: str) -> set[str]:
    """The normalised forms a synonym is matched by: itself, its plural, and without spaces."""
    base = normalise(synonym).strip()
    words = base.split()
    if not words:
        return set()
    base_plural = plural(base)
    forms = {base, base_plural}
    if len(words) > 1:
        forms |= {base.replace(" ", ""), base_plural.replace(" ", "")}
    return forms


def synonym_path(name_or_path: str) -> Path:
    """The file of a synonym list: a built-in by name (``coco``), else the path given."""
    path = Path(name_or_path).expanduser()
    return SYNONYM_DIR / f"{name_or_path}.json" if not path.suffix else path


def load_synonyms(name_or_path: str) -> dict:
    """A synonym file by dataset name (``coco``) or path; checked for the expected structure."""
    path = synonym_path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in SYNONYM_DIR.glob("*.json"))
        raise DataError(f"synonym file not found: {path} (dataset.synonyms; built-in: {', '.join(known)}; or a path "
                        "to a json file {\"classes\": [{\"name\": ..., \"synonyms\": [...]}]})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"corrupt synonym file {path}: {exc} (dataset.synonyms)") from exc
    classes = data.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, dict) and "name" in c for c in classes):
        raise DataError(f"{path}: expected {{\"classes\": [{{\"name\": ..., \"synonyms\": [...]}}, ...]}}")
    return data


def synonym_lists(name_or_path: str, classnames: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Class names and each one's synonym list (as written in the file, possibly empty) from a synonym file.

    ``classnames`` picks the classes and their order; None takes every class of the file, in file order.
    A class the file lacks is a :class:`DataError` naming them all.
    """
    data = load_synonyms(name_or_path)
    by_name = {c["name"]: c.get("synonyms", []) for c in data["classes"]}
    names = list(classnames) if classnames is not None else list(by_name)
    missing = [n for n in names if n not in by_name]
    if missing:
        shown = missing if len(missing) <= 10 else [*missing[:10], f"... {len(missing) - 10} more"]
        raise DataError(f"synonym file {name_or_path} lacks {len(missing)} class(es) {shown}; set dataset.synonyms "
                        "to a file that lists them (e.g. NUS-WIDE's Flickr tags for the zsl setting)")
    return names, [by_name[n] for n in names]


class CaptionParser:
    """Multi-hot class labels from caption text."""

    def __init__(self, classnames: list[str], synonyms: list[list[str]]):
        if len(classnames) != len(synonyms):
            raise ValueError("one synonym list per class")
        self.classnames = list(classnames)
        phrases: dict[str, int] = {}
        for c, words in enumerate(synonyms):
            for word in [classnames[c], *words]:
                for form in surface_forms(word):
                    if phrases.setdefault(form, c) != c:
                        raise DataError(f"the phrase {form!r} names two classes: "
                                        f"{classnames[phrases[form]]!r} and {classnames[c]!r}")
        # longest first (by words, then characters): compound names are consumed before their parts
        self.phrases = sorted(phrases.items(), key=lambda kv: (-len(kv[0].split()), -len(kv[0]), kv[0]))

    @classmethod
    def from_file(cls, name_or_path: str, classnames: list[str] | None = None) -> CaptionParser:
        """Parser from a synonym file; ``classnames`` (the dataset's order) must match the file's names."""
        names, synonyms = synonym_lists(name_or_path, classnames)
        return cls(names, synonyms)

    def classes_in(self, caption: str) -> set[int]:
        """Indices of the classes a caption mentions."""
        text = normalise(caption)
        found: set[int] = set()
        for phrase, c in self.phrases:
            needle = f" {phrase} "
            if needle in text:
                found.add(c)
                text = text.replace(needle, " ")
        return found

    def parse_corpus(self, captions: list[str]) -> tuple[list[str], np.ndarray]:
        """Captions that mention at least one class, and their labels [M, C] in {1, -1}."""
        kept, rows = [], []
        for caption in captions:
            found = self.classes_in(caption)
            if found:
                row = np.full(len(self.classnames), NEGATIVE, dtype=np.int8)
                row[sorted(found)] = POSITIVE
                kept.append(caption)
                rows.append(row)
        labels = np.stack(rows) if rows else np.zeros((0, len(self.classnames)), np.int8)
        return kept, labels
