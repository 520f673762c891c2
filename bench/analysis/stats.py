"""Statistics for the report: bootstrap of mAP and of mAP differences over seeds and test images, Pareto
fronts (the gaps between feature sets: :mod:`bench.analysis.gaps`). Pure numpy; every function says
exactly what it computes.

Bootstrap over test images (the unit that was sampled): an image is drawn with replacement ``n``
times; a resample is represented by its *counts* ``w`` (how often each image was drawn), and a
statistic of the resample is a function of ``w``. Per-class AP of a resample equals
:func:`bench.analysis.metrics.average_precision` on the resampled rows (drawn twice = listed twice; a
repeated image ties with itself, and ties count as one threshold there), computed here from
counts without re-sorting (:class:`ResampledAP`; tested against the direct computation).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from bench.analysis.metrics import check_scores

# ----- bootstrap --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrapped statistic: ``observed`` on the full sample, ``boot_mean`` the mean over resamples,
    [``ci_low``, ``ci_high``] the percentile interval at ``level``, ``p_value`` two-sided (see
    :func:`two_sided_p`)."""

    observed: float
    boot_mean: float
    ci_low: float
    ci_high: float
    p_value: float
    n_boot: int
    level: float = 0.95

    @property
    def significant(self) -> bool:
        """True when the confidence interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n_boot`` resamples of ``range(n)`` with replacement: arrays of ``n`` indices drawn uniformly by
    ``numpy.random.default_rng(seed).integers(0, n, size=n)``, one call per resample, in order."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, size=n)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of ``values``
    (numpy's default linear interpolation)."""
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def two_sided_p(observed: float, resampled: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0": the fraction of resampled values on the other
    side of 0 from ``observed`` (0 itself counts as the other side), doubled, capped at 1; 1 when
    ``observed`` is 0. A value of 0 means "below 1 / n_boot"."""
    resampled = np.asarray(resampled, dtype=np.float64)
    if observed == 0 or len(resampled) == 0:
        return 1.0
    other_side = resampled <= 0 if observed > 0 else resampled >= 0
    return float(min(1.0, 2.0 * other_side.mean()))


def bootstrap_values(statistic: Callable[[np.ndarray], float], n: int, n_boot: int = 1000,
                     seed: int = 0) -> tuple[float, np.ndarray]:
    """A statistic of ``n`` items on the observed sample and on ``n_boot`` resamples: (observed, values [n_boot]).

    ``statistic(w)`` gets ``w`` [n], how many times each item was drawn (``np.ones(n)`` is the observed
    sample); the resamples are those of :func:`bootstrap_indices` (``w = bincount(indices, minlength=n)``).
    """
    if n < 1:
        raise ValueError("bootstrap needs at least one item")
    observed = float(statistic(np.ones(n)))
    values = np.array([statistic(counts[:, 0].astype(np.float64)) for counts in bootstrap_counts(n, n_boot, seed)],
                      dtype=np.float64)
    return observed, values


def bootstrap_counts(n: int, n_boot: int = 1000, seed: int = 0, batch: int = 1) -> Iterator[np.ndarray]:
    """How many times each of ``n`` items is drawn in the resamples of :func:`bootstrap_indices`, ``batch``
    resamples at a time: int64 arrays [n, b] (b = ``batch``, fewer in the last)."""
    draws = bootstrap_indices(n, n_boot, seed)
    for start in range(0, n_boot, batch):
        yield np.stack([np.bincount(next(draws), minlength=n) for _ in range(min(batch, n_boot - start))], 1)


def summarise_bootstrap(observed: float, values: np.ndarray, level: float = 0.95) -> BootstrapResult:
    """The observed value, the mean of the resampled ``values``, their :func:`percentile_interval` and
    :func:`two_sided_p` (NaN mean and interval when there are no resamples)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return BootstrapResult(float(observed), np.nan, np.nan, np.nan, 1.0, 0, level)
    low, high = percentile_interval(values, level)
    return BootstrapResult(float(observed), float(values.mean()), low, high, two_sided_p(observed, values),
                           len(values), level)


class ResampledAP:
    """Per-class AP of one score matrix [N, C] on resamples of its rows, given as counts.

    ``ResampledAP(scores, labels)(w)`` equals ``bench.analysis.metrics.average_precision(scores[idx], labels[idx])``
    for ``w = bincount(idx, minlength=N)``. Each class's known entries (label != 0) are sorted once; every
    positive takes the precision at the end of its tie group (positive weight / weight of the rows up to the
    group's last row); AP = the weighted mean of those precisions over the positives; NaN for a class with no
    positive in the resample.

    Only the ends of the positives' tie groups matter, so each class's rows are cut once into *blocks*, each
    ending at one of them (rows after a class's last positive group are never needed). A resample's weight
    up to an end is a running sum of block sums, and the positives of a block share its precision. Block
    sums of a batch of resamples are one sparse product ``blocks [K, N] @ counts [N, b]`` (scipy), which
    reads each class's row order once per batch instead of once per resample (20x faster at COCO's size).
    """

    def __init__(self, scores: np.ndarray, labels: np.ndarray):
        import scipy.sparse

        scores, labels = check_scores(scores, labels)
        n, n_classes = scores.shape
        self.n_classes = n_classes
        # unknown entries sort last and are never inside a block (a block ends at a positive's group)
        keyed = np.where(labels != 0, -scores, np.inf)
        order = np.argsort(keyed, axis=0, kind="stable")  # [N, C]: rows of each class, best first
        sorted_keys = np.take_along_axis(keyed, order, axis=0)
        positive = np.take_along_axis(labels == 1, order, axis=0)
        is_end = np.ones_like(sorted_keys, dtype=bool)  # last row of each tie group
        is_end[:-1] = sorted_keys[1:] != sorted_keys[:-1]
        end_rows = np.where(is_end, np.arange(n)[:, None], n)
        group_end = np.minimum.accumulate(end_rows[::-1], axis=0)[::-1]  # [N, C]
        pos_class, pos_row = np.nonzero(positive.T)  # positives, class-major, best first within a class
        pos_end = group_end[pos_row, pos_class]
        new_block = np.ones(len(pos_class), dtype=bool)  # one block per (class, positive group end)
        new_block[1:] = (pos_class[1:] != pos_class[:-1]) | (pos_end[1:] != pos_end[:-1])
        block_class, block_end = pos_class[new_block], pos_end[new_block]
        n_blocks = len(block_class)
        self.block_class = block_class
        self.class_first_block = np.searchsorted(block_class, np.arange(n_classes))
        self.classes = np.unique(block_class)  # the classes with a positive
        # rows of each block: from the previous block's end (or the class's first row) to its own end
        first = np.r_[True, block_class[1:] != block_class[:-1]] if n_blocks else np.zeros(0, bool)
        begin = np.where(first, 0, np.r_[-1, block_end[:-1]] + 1)
        lengths = block_end - begin + 1
        indptr = np.r_[0, np.cumsum(lengths)]
        rows = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - begin, lengths)  # begin .. end of each block
        cols = np.repeat(block_class, lengths)
        ones = np.ones(len(rows), np.float32)  # float32 sums of counts are exact up to 2**24
        self.blocks = scipy.sparse.csr_matrix((ones, order[rows, cols], indptr), shape=(n_blocks, n))
        block_of = np.cumsum(new_block) - 1
        self.positives = scipy.sparse.csr_matrix(
            (np.ones(len(pos_class), np.float32), order[pos_row, pos_class], np.r_[0, np.cumsum(
                np.bincount(block_of, minlength=n_blocks))]), shape=(n_blocks, n))

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Per-class AP [C] for counts [N], or [C, b] for a batch of resamples' counts [N, b] (fractions in
        [0, 1], NaN where a resample holds no positive of the class)."""
        counts = np.asarray(counts)
        single = counts.ndim == 1
        weights = np.asarray(counts[:, None] if single else counts, dtype=np.float32)
        out = np.full((weights.shape[1], self.n_classes), np.nan)
        if len(self.block_class):
            # resample-major [b, blocks] float64: the sums below run along contiguous rows, in place
            seen = self._running(np.array((self.blocks @ weights).T, np.float64, order="C"))
            positives = np.array((self.positives @ weights).T, np.float64, order="C")  # positive weight per block
            precision = self._running(positives.copy())  # positive weight up to each block's end ...
            np.divide(precision, np.maximum(seen, 1.0), out=precision)  # ... over all weight (tp <= seen: 0 / 1)
            precision *= positives
            starts = self.class_first_block[self.classes]
            n_pos = np.add.reduceat(positives, starts, axis=1)
            gained = np.add.reduceat(precision, starts, axis=1)
            out[:, self.classes] = np.divide(gained, n_pos, out=np.full(gained.shape, np.nan), where=n_pos > 0)
        return out[0] if single else out.T

    def _running(self, block_sums: np.ndarray) -> np.ndarray:
        """Cumulative sums along the blocks [b, K], restarting at each class's first block; in place."""
        np.cumsum(block_sums, axis=1, out=block_sums)
        starts = self.class_first_block[self.classes]
        ends = np.r_[starts[1:], block_sums.shape[1]]
        for start, end in zip(starts[::-1], ends[::-1]):  # last class first: column start - 1 is still the total
            if start:
                block_sums[:, start:end] -= block_sums[:, start - 1:start]
        return block_sums


BATCH = 32  # resamples evaluated together by map_resamples (memory: a few [N, BATCH] and [blocks, BATCH] arrays)


def map_resamples(scores: np.ndarray, labels: np.ndarray, n_boot: int = 1000,
                  seed: int = 0) -> tuple[float, np.ndarray]:
    """mAP in points (x100) of one score matrix [N, C] on the full test set and on each resample of
    :func:`bootstrap_indices` ``(N, n_boot, seed)``: (observed, values [n_boot]). A resample's mAP is
    the mean AP over the classes with at least one positive in it (:class:`ResampledAP`, ``BATCH``
    resamples at a time)."""
    ap = ResampledAP(scores, labels)
    n = len(labels)
    if n < 1:
        raise ValueError("bootstrap needs at least one item")
    observed = 100.0 * float(np.nanmean(ap(np.ones(n, dtype=np.int64))))
    values = np.empty(n_boot)
    for start, counts in zip(range(0, n_boot, BATCH), bootstrap_counts(n, n_boot, seed, BATCH)):
        with warnings.catch_warnings():  # a resample without any positive: NaN, as for one resample at a time
            warnings.simplefilter("ignore", RuntimeWarning)
            values[start:start + counts.shape[1]] = 100.0 * np.nanmean(ap(counts), axis=0)
    return observed, values


def _as_list(scores: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        return [scores]
    return list(scores)


def seed_map_resamples(scores: np.ndarray | Sequence[np.ndarray], labels: np.ndarray, n_boot: int = 1000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`map_resamples` of each of a method's seeds (one score matrix or a list, one per seed):
    (observed mAP per seed [S], mAP per seed and resample [S, n_boot]); every matrix sees the same resamples."""
    runs = [map_resamples(m, labels, n_boot, seed) for m in _as_list(scores)]
    if not runs:
        raise ValueError("need at least one score matrix")
    return np.array([obs for obs, _ in runs]), np.stack([vals for _, vals in runs])


def seed_mean_map_resamples(scores: np.ndarray | Sequence[np.ndarray], labels: np.ndarray, n_boot: int = 1000,
                            seed: int = 0) -> tuple[float, np.ndarray]:
    """:func:`seed_map_resamples` averaged over the seeds: (mean observed mAP, mean mAP per resample [n_boot])."""
    observed, values = seed_map_resamples(scores, labels, n_boot, seed)
    return float(observed.mean()), values.mean(axis=0)


def seed_draws(n_seeds: int, n_boot: int, seed: int = 0, stream: int = 1) -> np.ndarray:
    """[n_boot, n_seeds] seed indices drawn with replacement, one row per resample:
    ``numpy.random.default_rng([seed, stream]).integers(0, n_seeds, size=(n_boot, n_seeds))``."""
    return np.random.default_rng([seed, stream]).integers(0, n_seeds, size=(n_boot, n_seeds))


def seeds_and_images_bootstrap_map(scores_a: np.ndarray | Sequence[np.ndarray],
                                   scores_b: np.ndarray | Sequence[np.ndarray], labels: np.ndarray,
                                   n_boot: int = 1000, seed: int = 0, level: float = 0.95, *,
                                   paired_seeds: bool = False,
                                   resampled_b: tuple[np.ndarray, np.ndarray] | None = None) -> BootstrapResult:
    """Two-level bootstrap of mAP(A) - mAP(B) over training seeds *and* test images, in mAP points.

    Resample b draws N test images (:func:`bootstrap_indices`, the same draw for both methods, as
    :func:`paired_bootstrap_map`) and, for each method, as many seeds as it has, with replacement
    (:func:`seed_draws`: stream 1 for A, stream 2 for B; with ``paired_seeds`` -- the same seed ids,
    e.g. the same partial-label masks -- B reuses A's draw). A method's value on resample b is the
    mean over its drawn seeds of that seed's mAP on the drawn images; the statistic is the
    difference. The observed value is the difference of seed-averaged mAPs on the full test set.
    The interval so covers seed-to-seed variation as well as test-image sampling; with one seed per
    method it equals :func:`paired_bootstrap_map`'s. ``resampled_b``: ``seed_map_resamples(scores_b,
    labels, n_boot, seed)`` when the caller has it.
    """
    labels = np.asarray(labels)
    for mat in _as_list(scores_a) + _as_list(scores_b):
        if np.shape(mat) != labels.shape:
            raise ValueError(f"score matrix {np.shape(mat)} does not match labels {labels.shape}")
    observed_a, values_a = seed_map_resamples(scores_a, labels, n_boot, seed)
    observed_b, values_b = resampled_b if resampled_b is not None else seed_map_resamples(scores_b, labels,
                                                                                          n_boot, seed)
    return seeds_and_images_bootstrap(observed_a, values_a, observed_b, values_b, seed, level,
                                      paired_seeds=paired_seeds)


def seeds_and_images_bootstrap(observed_a: np.ndarray, values_a: np.ndarray, observed_b: np.ndarray,
                               values_b: np.ndarray, seed: int = 0, level: float = 0.95, *,
                               paired_seeds: bool = False) -> BootstrapResult:
    """:func:`seeds_and_images_bootstrap_map` from each seed's mAP on the full test set (``observed_*`` [S])
    and on the image resamples (``values_*`` [S, n_boot], :func:`seed_map_resamples` with the same ``seed``):
    what the report computes from resamples stored beside the records (:func:`bench.records.record_resamples`)."""
    observed_a, observed_b = np.atleast_1d(observed_a), np.atleast_1d(observed_b)
    values_a, values_b = np.atleast_2d(values_a), np.atleast_2d(values_b)
    n_boot = values_a.shape[1]
    if values_b.shape[1] != n_boot:
        raise ValueError(f"resamples differ in number: {n_boot} and {values_b.shape[1]}")
    if paired_seeds and len(observed_a) != len(observed_b):
        raise ValueError(f"paired seeds need as many seeds for both methods, got {len(observed_a)} and "
                         f"{len(observed_b)}")
    draws_a = seed_draws(len(observed_a), n_boot, seed, stream=1)
    draws_b = draws_a if paired_seeds else seed_draws(len(observed_b), n_boot, seed, stream=2)
    boot_a = np.take_along_axis(values_a.T, draws_a, axis=1).mean(axis=1)  # [n_boot]
    boot_b = np.take_along_axis(values_b.T, draws_b, axis=1).mean(axis=1)
    return summarise_bootstrap(float(observed_a.mean() - observed_b.mean()), boot_a - boot_b, level)


def paired_bootstrap_map(scores_a: np.ndarray | Sequence[np.ndarray], scores_b: np.ndarray | Sequence[np.ndarray],
                         labels: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95, *,
                         resampled_b: tuple[float, np.ndarray] | None = None) -> BootstrapResult:
    """Paired bootstrap over test images of mAP(A) - mAP(B), in mAP points (x100, as records store mAP).

    ``scores_a`` / ``scores_b``: one score matrix [N, C] or a list of them (one per seed), all on the
    same test images in the same order, with ``labels`` [N, C] in {1, 0, -1}. Each resample draws N
    image indices with replacement (:func:`bootstrap_indices`, seeded) and applies the *same*
    resample to every matrix of both methods. A method's mAP on a resample is the mean over its seeds
    of the mean AP over the classes with at least one positive in that resample (a class without a
    positive is left out for both methods: the labels are shared). So with several seeds the
    statistic is the difference of seed-averaged mAPs -- the difference the results table shows --
    and seeds need not pair up (counts may differ); the interval reflects test-image sampling only,
    not seed-to-seed variation (the table's ± std shows that). Returns :func:`summarise_bootstrap`.

    ``resampled_b``: ``seed_mean_map_resamples(scores_b, labels, n_boot, seed)`` when the caller has it
    already (one reference compared with several methods resamples the reference once); computed here
    when None.
    """
    labels = np.asarray(labels)
    for mat in _as_list(scores_a) + _as_list(scores_b):
        if np.shape(mat) != labels.shape:
            raise ValueError(f"score matrix {np.shape(mat)} does not match labels {labels.shape}")
    observed_a, values_a = seed_mean_map_resamples(scores_a, labels, n_boot, seed)
    if resampled_b is None:
        resampled_b = seed_mean_map_resamples(scores_b, labels, n_boot, seed)
    observed_b, values_b = resampled_b
    return summarise_bootstrap(observed_a - observed_b, values_a - values_b, level)


# ----- cost vs accuracy -------------------------------------------------------------------------


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Boolean mask [n] of the Pareto-optimal points for minimising ``cost`` and maximising ``accuracy``:
    a point is dropped when another has cost <= and accuracy >= with at least one strict. Identical
    points are all kept; points with a NaN coordinate are never optimal (nor dominate)."""
    cost, accuracy = np.asarray(cost, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    if cost.shape != accuracy.shape or cost.ndim != 1:
        raise ValueError(f"cost {cost.shape} and accuracy {accuracy.shape} must be 1-D of the same length")
    valid = np.isfinite(cost) & np.isfinite(accuracy)
    no_worse = (cost[None, :] <= cost[:, None]) & (accuracy[None, :] >= accuracy[:, None])  # [i, j]: j vs i
    better = (cost[None, :] < cost[:, None]) | (accuracy[None, :] > accuracy[:, None])
    dominated = (no_worse & better & valid[None, :]).any(axis=1)
    return valid & ~dominated
