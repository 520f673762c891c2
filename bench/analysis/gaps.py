"""Distances between feature sets: Fréchet distance, the image/text modality gap, near-duplicate search
(generated images against test images). Pure numpy/scipy; every function says exactly what it computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


def frechet_from_moments(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu_a, cov_a) and N(mu_b, cov_b):
    ``|mu_a - mu_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))`` (the FID formula).

    The matrix square root is ``scipy.linalg.sqrtm``; when it is not finite (singular product) it is
    retried on covariances with 1e-6 added to the diagonal (as pytorch-fid does); an imaginary part
    from round-off is dropped when below 1e-3 of the largest magnitude, else it is an error.
    """
    mu_a, mu_b = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu_a, mu_b))
    cov_a, cov_b = (np.atleast_2d(np.asarray(c, dtype=np.float64)) for c in (cov_a, cov_b))
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        offset = np.eye(len(cov_a)) * 1e-6
        root = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(root):
        scale = max(float(np.abs(root).max()), 1e-12)
        if np.abs(root.imag).max() > 1e-3 * scale:
            raise ValueError(f"Fréchet distance: imaginary component {np.abs(root.imag).max():.3g} in the "
                             "covariance square root")
        root = root.real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between two feature sets [Na, D] and [Nb, D] (rows = samples): the
    :func:`frechet_from_moments` of their means and sample covariances (``np.cov``, ddof=1).
    Features are used as given (no normalisation)."""
    feats_a, feats_b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"feature sets must be [N, D] with the same D, got {feats_a.shape} and {feats_b.shape}")
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise ValueError("a covariance needs at least two samples per set")
    return frechet_from_moments(feats_a.mean(0), np.cov(feats_a, rowvar=False),
                                feats_b.mean(0), np.cov(feats_b, rowvar=False))


def l2_normalise(feats: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), as float64."""
    feats = np.asarray(feats, dtype=np.float64)
    norms = np.linalg.norm(feats, axis=-1, keepdims=True)
    return np.divide(feats, norms, out=np.zeros_like(feats), where=norms > 0)


def mean_pairwise_cosine(feats: np.ndarray) -> float:
    """Mean cosine similarity over all ordered pairs (i, j), i != j, of the rows of ``feats`` [N, D]:
    ``(|sum_i x_i|^2 - sum_i |x_i|^2) / (N (N - 1))`` on L2-normalised rows (no N x N matrix)."""
    unit = l2_normalise(feats)
    n = len(unit)
    if n < 2:
        return float("nan")
    total = unit.sum(axis=0)
    return float((total @ total - (unit * unit).sum()) / (n * (n - 1)))


def modality_gap(image_feats: np.ndarray, text_feats: np.ndarray) -> dict:
    """Modality-gap statistics of paired image/text features ([N, D] each, row i of one paired with row
    i of the other), all on L2-normalised rows:

    ``centroid_distance``: |mean image - mean text| (Liang et al. 2022, "Mind the Gap");
    ``mean_paired_cosine``: mean over i of cos(image_i, text_i);
    ``mean_image_image_cosine`` / ``mean_text_text_cosine``: :func:`mean_pairwise_cosine` within each
    modality; ``n_pairs``: N.
    """
    image, text = l2_normalise(image_feats), l2_normalise(text_feats)
    if image.shape != text.shape or image.ndim != 2:
        raise ValueError(f"paired features must have the same [N, D] shape, got {image.shape} and {text.shape}")
    return {
        "centroid_distance": float(np.linalg.norm(image.mean(0) - text.mean(0))),
        "mean_paired_cosine": float((image * text).sum(1).mean()),
        "mean_image_image_cosine": mean_pairwise_cosine(image),
        "mean_text_text_cosine": mean_pairwise_cosine(text),
        "n_pairs": int(len(image)),
    }


@dataclass(frozen=True)
class NearDuplicates:
    """For each generated feature its most similar test feature: ``best_cosine`` [G] and ``best_test`` [G]
    (index into the test set); ``n_near_duplicates`` how many best cosines are >= ``threshold``; ``top``
    the highest (generated index, test index, cosine) triples, best first."""

    best_cosine: np.ndarray
    best_test: np.ndarray
    threshold: float
    n_near_duplicates: int
    top: list[tuple[int, int, float]]

    @property
    def max_similarity(self) -> float:
        return float(self.best_cosine.max()) if len(self.best_cosine) else float("nan")


def near_duplicates(generated: np.ndarray, test: np.ndarray, threshold: float = 0.95, top: int = 20,
                    chunk_size: int = 1024) -> NearDuplicates:
    """Cosine near-duplicate search of generated features [G, D] against test features [T, D].

    For every generated row the maximum cosine similarity to any test row and that row's index (the
    first on ties); counted as a near duplicate when >= ``threshold``. Both sides are read and L2-normalised
    ``chunk_size`` rows at a time (memory-mapped features stay on disk), so memory is ``chunk_size^2``
    cosines and two chunks of features, not ``G x T`` or either whole set.
    """
    n_gen, n_test = len(generated), len(test)
    if np.ndim(generated) != 2 or np.ndim(test) != 2 or np.shape(generated)[1] != np.shape(test)[1] or not n_test:
        raise ValueError(f"features must be [G, D] and [T, D] with T > 0, got {np.shape(generated)} and "
                         f"{np.shape(test)}")
    best_cosine = np.full(n_gen, -np.inf)
    best_test = np.zeros(n_gen, dtype=np.int64)
    for start in range(0, n_gen, chunk_size):
        gen = l2_normalise(generated[start:start + chunk_size])
        best, where = best_cosine[start:start + chunk_size], best_test[start:start + chunk_size]  # views
        for first in range(0, n_test, chunk_size):
            sims = gen @ l2_normalise(test[first:first + chunk_size]).T  # [chunk, chunk]
            arg = sims.argmax(1)
            value = sims[np.arange(len(sims)), arg]
            better = value > best  # strictly: on ties the earlier test row stays
            best[better], where[better] = value[better], first + arg[better]
    order = np.argsort(-best_cosine, kind="stable")[:top]
    pairs = [(int(g), int(best_test[g]), float(best_cosine[g])) for g in order]
    return NearDuplicates(best_cosine, best_test, float(threshold), int((best_cosine >= threshold).sum()), pairs)
