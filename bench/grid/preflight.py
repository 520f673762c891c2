"""Before any work: every external resource the planned cells need, checked at once and cheaply.

A sweep that stops at its seventh cell because a pipeline is not on disk has wasted the six before it. So
``bench run`` first asks, for the cells that are not done, what each will read and whether it is there:

- the CLIP weights of every backbone (the config's and the methods' own): the checkpoint file, the open_clip
  model and tag, with ``HF_HUB_OFFLINE`` set the local hub cache; a checkpoint that would unpickle Python
  objects (:func:`bench.features.weights.weights_problem`);
- the training and validation splits the cells read (loaded once for the run, as the cells would);
- caption corpora and synonym lists of the caption- and generation-trained methods;
- the text-to-image pipelines of the generated-image cells whose images are not all on disk yet
  (:meth:`bench.generation.generators.Generator.unavailable`; no model is loaded);
- the seen/unseen split file of the zsl setting.

Every problem is collected and the run stops with one line listing them all, each with the config key or
command that supplies it (:class:`bench.errors.MissingResourcesError`). Nothing is downloaded and no model
is built here.
"""

from __future__ import annotations

from bench.cell.session import Session
from bench.data.base import require_file
from bench.data.captions import load_synonyms, synonym_path
from bench.errors import DataError, MissingResourcesError
from bench.features.weights import weights_problem
from bench.registry import construct


def check_resources(session: Session, cells) -> None:
    """Raise :class:`MissingResourcesError` listing every resource the cells that are not done would miss."""
    from bench.cell.validation import tunes, uses_val_split
    from bench.grid.sweep import plans_to_prepare

    problems: dict[str, None] = {}  # in order, each once
    plans = plans_to_prepare(session, cells)
    backbones: dict = {}
    splits: set[str] = set()
    captions, zsl, generating = False, False, []
    for plan in plans:
        method = construct(plan.method_cls, plan.kwargs, f"method {plan.cell.method!r}")
        key = f"{plan.cell.method}.backbone" if plan.backbone_overrides else "backbone"
        backbones.setdefault(session.backbone_spec(plan.backbone_overrides), key)
        trains_on, setting = method.trains_on, plan.cell.setting
        if trains_on == "images" or (trains_on == "generated" and setting not in ("zero-shot", "zsl")):
            splits.add("train")
        if getattr(method, "fits_features", False) or tunes(method):
            splits.add("val" if uses_val_split(session) else "train")
        captions |= trains_on in ("captions", "generated")
        zsl |= setting == "zsl"
        if trains_on == "generated" and getattr(method, "use_generated", True) and setting != "zsl":
            generating.append(plan)
    for spec, key in backbones.items():
        _note(problems, weights_problem(spec, key))
    for name in sorted(splits):
        _note(problems, _data_problem(lambda name=name: session.split(name)))
    if zsl:
        _note(problems, _data_problem(session.zsl_classes))
    if captions:
        caption_problems = _caption_problems(session.dataset)
        for problem in caption_problems:
            _note(problems, problem)
        if generating and not caption_problems:
            for problem in _generator_problems(session, generating):
                _note(problems, problem)
    if len(problems) == 1:  # the problem's own line says what and how
        raise MissingResourcesError(next(iter(problems)))
    if problems:
        raise MissingResourcesError(f"the planned cells need {len(problems)} things that are not here (nothing was "
                                    "run): " + "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1)))


def _note(problems: dict, problem: str | None) -> None:
    if problem:
        problems[problem] = None


def _data_problem(load) -> str | None:
    try:
        load()
    except DataError as exc:
        return str(exc)
    return None


def _caption_problems(dataset) -> list[str]:
    """A missing caption file or synonym list, each named with how to supply it."""
    problems = []
    try:
        for path, hint in dataset.caption_sources():
            problem = _data_problem(lambda path=path, hint=hint: require_file(path, "caption file", hint))
            if problem:
                problems.append(problem)
    except DataError as exc:  # no caption corpus configured at all (VOC without dataset.caption_file)
        problems.append(str(exc))
    synonyms = synonym_path(dataset.synonyms)
    if not synonyms.is_file():
        problems.append(_data_problem(lambda: load_synonyms(dataset.synonyms)))
    return problems


def _generator_problems(session: Session, plans) -> list[str]:
    """Each generator that still has images to render here and cannot be loaded (its config key named)."""
    from bench.grid.jobs import missing_images

    problems, seen = [], set()
    for plan in plans:
        for generator, *_ in missing_images([plan], session):
            identity = repr(sorted(generator.identity().items()))
            if identity not in seen:
                seen.add(identity)
                problem = generator.unavailable(f"{plan.cell.method}.generator")
                if problem:
                    problems.append(problem)
            break  # one image tells which generator the cell renders with
    return problems
