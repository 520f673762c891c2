"""The class names written into prompts (zero-shot CLIP, CoOp-style prompts, TaI-DPT).

``prompt_names`` (a method option; set it per dataset in the dataset's config, e.g. ``zsclip =
dict(prompt_names="coco")`` in ``configs/coco.py``):
  None          the dataset's class names;
  a list        one name per class, in the dataset's class order;
  a ``.txt`` path   one name per line, in the dataset's class order;
  another string    a synonym list (built-in name such as "coco", or a synonym json path): each class's
                first synonym -- TaI-DPT's prompt names ("motor bike", "aeroplane", "tv" for COCO;
                ``datasets/data_helpers.py:251``), the class name where the list is empty.
Underscores become spaces in every case (TaI-DPT ``trainers/zsclip.py:51``, CoOp ``trainers/coop.py:96``).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.base import DataError


def first_synonyms(synonym_file: str, classnames: list[str]) -> list[str]:
    """Each class's first synonym in a synonym file (TaI-DPT's prompt names); the name where none.
    A class the file lacks is a DataError."""
    from bench.data.captions import synonym_lists

    names, synonyms = synonym_lists(synonym_file, classnames)
    return [words[0] if words else name for name, words in zip(names, synonyms)]


def prompt_names(spec: str | list[str] | None, classnames: list[str]) -> list[str]:
    """The names for the prompts of ``classnames`` (see the module docstring)."""
    if spec is None:
        names = list(classnames)
    elif isinstance(spec, (list, tuple)):
        names = [str(n) for n in spec]
    elif str(spec).endswith(".txt"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DataError(f"prompt_names file not found: {path}")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        names = first_synonyms(spec, classnames)
    if len(names) != len(classnames):
        raise DataError(f"prompt_names {spec if isinstance(spec, str) else 'list'} gives {len(names)} names for "
                        f"{len(classnames)} classes; give one per class, in the dataset's class order")
    return [name.replace("_", " ") for name in names]
