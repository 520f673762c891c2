"""bench.analysis.stats against independent computations: brute-force loops, closed forms, hand-made cases."""

import itertools

import numpy as np
import pytest

from bench.analysis.gaps import frechet_distance, frechet_from_moments, modality_gap, near_duplicates
from bench.analysis.metrics import average_precision
from bench.analysis.stats import (
    ResampledAP,
    bootstrap_indices,
    bootstrap_values,
    paired_bootstrap_map,
    pareto_front,
    percentile_interval,
    seed_mean_map_resamples,
    seeds_and_images_bootstrap_map,
    summarise_bootstrap,
    two_sided_p,
)


def _labels(rng, n, c, unknown=0.1):
    labels = rng.choice([1, -1, 0], size=(n, c), p=[0.25, 0.75 - unknown, unknown])
    labels[0] = 1  # every class has a positive in the full set
    return labels


def test_resampled_ap_is_average_precision_of_the_resampled_rows():
    rng = np.random.default_rng(0)
    for trial in range(25):
        n, c = int(rng.integers(2, 40)), int(rng.integers(1, 6))
        scores = np.round(rng.random((n, c)), 1)  # coarse: many ties
        labels = _labels(rng, n, c)
        ap = ResampledAP(scores, labels)
        np.testing.assert_allclose(ap(np.ones(n)), average_precision(scores, labels), atol=1e-12)
        for idx in bootstrap_indices(n, 4, seed=trial):
            expected = average_precision(scores[idx], labels[idx])
            got = ap(np.bincount(idx, minlength=n))
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1e-12)


def test_bootstrap_indices_are_seeded_and_in_range():
    a = list(bootstrap_indices(7, 3, seed=5))
    b = list(bootstrap_indices(7, 3, seed=5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and all(len(x) == 7 and x.min() >= 0 and x.max() < 7
                                                                   for x in a)
    assert not np.array_equal(a[0], next(bootstrap_indices(7, 1, seed=6)))


def test_mean_statistic_against_a_brute_force_loop_and_the_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=40)
    observed, values = bootstrap_values(lambda w: float((w * x).sum() / w.sum()), len(x), n_boot=4000, seed=3)
    brute = np.array([x[idx].mean() for idx in bootstrap_indices(len(x), 4000, seed=3)])
    assert observed == pytest.approx(x.mean())
    np.testing.assert_allclose(values, brute, rtol=1e-12)
    result = summarise_bootstrap(observed, values)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.percentile(brute, [2.5, 97.5])))
    assert result.boot_mean == pytest.approx(brute.mean()) and result.n_boot == 4000
    # closed form: E[resample mean] = sample mean; sd = population sd / sqrt(n)
    se = x.std(ddof=0) / np.sqrt(len(x))
    assert result.boot_mean == pytest.approx(x.mean(), abs=4 * se / np.sqrt(4000))
    assert values.std() == pytest.approx(se, rel=0.05)
    assert result.ci_low < x.mean() < result.ci_high and result.significant  # mean 3, well away from 0


def test_two_sided_p_and_percentile_interval_by_hand():
    assert two_sided_p(1.0, np.array([2.0, 1.0, -1.0, 0.0])) == 1.0  # 2 of 4 on the other side (0 counts), doubled
    assert two_sided_p(1.0, np.array([2.0, 1.0, 3.0, -1.0])) == 0.5
    assert two_sided_p(-1.0, np.array([-2.0, -1.0, -3.0, -1.0])) == 0.0
    assert two_sided_p(0.0, np.array([1.0, 2.0])) == 1.0
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))


def test_identical_scores_give_zero_difference():
    rng = np.random.default_rng(2)
    labels = _labels(rng, 30, 4, unknown=0.0)
    scores = rng.random((30, 4))
    result = paired_bootstrap_map(scores, scores.copy(), labels, n_boot=200, seed=0)
    assert result.observed == 0 and result.boot_mean == 0
    assert (result.ci_low, result.ci_high) == (0, 0) and result.p_value == 1.0 and not result.significant


def test_perfect_vs_random_is_significant():
    rng = np.random.default_rng(3)
    labels = _labels(rng, 80, 5, unknown=0.0)
    perfect = (labels == 1).astype(float) + 0.01 * rng.random(labels.shape)
    random = rng.random(labels.shape)
    result = paired_bootstrap_map(perfect, random, labels, n_boot=500, seed=0)
    assert result.observed == pytest.approx(100 * (1 - np.nanmean(average_precision(random, labels))))
    assert result.ci_low > 0 and result.significant and result.p_value < 0.01
    flipped = paired_bootstrap_map(random, perfect, labels, n_boot=500, seed=0)
    assert flipped.observed == pytest.approx(-result.observed) and flipped.ci_high < 0


def test_paired_bootstrap_over_seeds_against_a_brute_force_loop():
    rng = np.random.default_rng(4)
    n, c = 25, 4
    labels = _labels(rng, n, c)
    labels[:, 3] = np.where(np.arange(n) == 5, 1, -1)  # a rare class: often absent from a resample
    seeds_a = [np.round(rng.random((n, c)), 2) for _ in range(2)]
    seeds_b = [np.round(rng.random((n, c)), 2) for _ in range(3)]

    def seed_mean(mats, idx):
        return np.mean([100 * np.nanmean(average_precision(m[idx], labels[idx])) for m in mats])

    everything = np.arange(n)
    brute = np.array([seed_mean(seeds_a, idx) - seed_mean(seeds_b, idx) for idx in bootstrap_indices(n, 300, seed=9)])
    observed = seed_mean(seeds_a, everything) - seed_mean(seeds_b, everything)
    other_side = (brute <= 0).mean() if observed > 0 else (brute >= 0).mean()
    result = paired_bootstrap_map(seeds_a, seeds_b, labels, n_boot=300, seed=9)
    assert result.observed == pytest.approx(observed, abs=1e-9)
    assert result.boot_mean == pytest.approx(brute.mean(), abs=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.percentile(brute, [2.5, 97.5])), abs=1e-9)
    assert result.p_value == pytest.approx(min(1.0, 2 * other_side))
    # the report resamples its reference once and hands it in: the same numbers
    given = paired_bootstrap_map(seeds_a, seeds_b, labels, n_boot=300, seed=9,
                                 resampled_b=seed_mean_map_resamples(seeds_b, labels, 300, 9))
    assert given.observed == pytest.approx(observed, abs=1e-9)
    assert (given.ci_low, given.ci_high) == pytest.approx(tuple(np.percentile(brute, [2.5, 97.5])), abs=1e-9)
    assert given.p_value == pytest.approx(min(1.0, 2 * other_side))
    with pytest.raises(ValueError, match="does not match"):
        paired_bootstrap_map(seeds_a, [np.zeros((n, c + 1))], labels, n_boot=2)


def test_seeds_and_images_bootstrap_against_a_brute_force_loop():
    rng = np.random.default_rng(5)
    n, c = 25, 4
    labels = _labels(rng, n, c)
    seeds_a = [np.round(rng.random((n, c)) + 0.3 * k * (labels == 1), 2) for k in range(3)]  # seeds differ a lot
    seeds_b = [np.round(rng.random((n, c)), 2) for _ in range(2)]

    def seed_map(m, idx):
        return 100 * np.nanmean(average_precision(m[idx], labels[idx]))

    draws_a = np.random.default_rng([9, 1]).integers(0, 3, size=(300, 3))
    draws_b = np.random.default_rng([9, 2]).integers(0, 2, size=(300, 2))
    brute = np.array([np.mean([seed_map(seeds_a[s], idx) for s in draws_a[b]])
                      - np.mean([seed_map(seeds_b[s], idx) for s in draws_b[b]])
                      for b, idx in enumerate(bootstrap_indices(n, 300, seed=9))])
    everything = np.arange(n)
    observed = np.mean([seed_map(m, everything) for m in seeds_a]) - np.mean([seed_map(m, everything) for m in seeds_b])
    result = seeds_and_images_bootstrap_map(seeds_a, seeds_b, labels, n_boot=300, seed=9)
    assert result.observed == pytest.approx(observed, abs=1e-9)
    assert result.boot_mean == pytest.approx(brute.mean(), abs=1e-9)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.percentile(brute, [2.5, 97.5])), abs=1e-9)
    # seed variation widens the interval over the image-only one; one seed each: the image-only interval
    images_only = paired_bootstrap_map(seeds_a, seeds_b, labels, n_boot=300, seed=9)
    assert result.ci_high - result.ci_low > images_only.ci_high - images_only.ci_low
    one = seeds_and_images_bootstrap_map(seeds_a[:1], seeds_b[:1], labels, n_boot=300, seed=9)
    same = paired_bootstrap_map(seeds_a[:1], seeds_b[:1], labels, n_boot=300, seed=9)
    assert (one.ci_low, one.ci_high, one.p_value) == pytest.approx((same.ci_low, same.ci_high, same.p_value))
    # paired seeds: B is drawn with A's seed indices
    paired = seeds_and_images_bootstrap_map(seeds_a, seeds_a[::-1], labels, n_boot=50, seed=9, paired_seeds=True)
    assert paired.observed == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="paired seeds"):
        seeds_and_images_bootstrap_map(seeds_a, seeds_b, labels, n_boot=2, paired_seeds=True)


def test_frechet_1d_gaussians_closed_form():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 2.0, size=500), rng.normal(-0.5, 0.7, size=300)
    m1, m2, s1, s2 = a.mean(), b.mean(), a.var(ddof=1), b.var(ddof=1)
    expected = (m1 - m2) ** 2 + s1 + s2 - 2 * np.sqrt(s1 * s2)
    assert frechet_distance(a[:, None], b[:, None]) == pytest.approx(expected, rel=1e-9)
    assert frechet_from_moments(1.0, 4.0, -0.5, 0.49) == pytest.approx(1.5 ** 2 + (2.0 - 0.7) ** 2)


def test_frechet_diagonal_and_full_covariances():
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.5, 0.5])
    expected = ((m1 - m2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_from_moments(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    # full covariances: tr sqrt(A B) = tr sqrt(A^1/2 B A^1/2), the latter symmetric (numpy eigh)
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4)), rng.normal(size=(150, 4)) + 1.0
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(ca)
    root_a = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root_a @ cb @ root_a)
    direct = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(inner.clip(0)).sum()
    assert frechet_distance(a, b) == pytest.approx(direct, rel=1e-7)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_modality_gap_on_hand_made_vectors():
    image = np.array([[3.0, 0.0], [0.0, 2.0]])  # normalised: e1, e2
    text = np.array([[1.0, 0.0], [5.0, 0.0]])  # normalised: e1, e1
    gap = modality_gap(image, text)
    assert gap["centroid_distance"] == pytest.approx(np.sqrt(0.5))  # (0.5, 0.5) vs (1, 0)
    assert gap["mean_paired_cosine"] == pytest.approx(0.5)  # cos(e1, e1) = 1, cos(e2, e1) = 0
    assert gap["mean_image_image_cosine"] == pytest.approx(0.0)
    assert gap["mean_text_text_cosine"] == pytest.approx(1.0)
    assert gap["n_pairs"] == 2
    rng = np.random.default_rng(7)
    x = rng.normal(size=(9, 5))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    brute = np.mean([unit[i] @ unit[j] for i, j in itertools.permutations(range(9), 2)])
    assert modality_gap(x, x)["mean_image_image_cosine"] == pytest.approx(brute)


def test_near_duplicates_against_brute_force():
    rng = np.random.default_rng(8)
    test = rng.normal(size=(13, 6))
    generated = rng.normal(size=(30, 6))
    generated[[4, 17, 25]] = test[[2, 9, 2]] * 1.7 + 1e-3 * rng.normal(size=(3, 6))  # planted copies
    found = near_duplicates(generated, test, threshold=0.99, top=5, chunk_size=7)
    unit_g = generated / np.linalg.norm(generated, axis=1, keepdims=True)
    unit_t = test / np.linalg.norm(test, axis=1, keepdims=True)
    sims = np.array([[g @ t for t in unit_t] for g in unit_g])
    np.testing.assert_allclose(found.best_cosine, sims.max(1), atol=1e-12)
    np.testing.assert_array_equal(found.best_test, sims.argmax(1))
    assert found.n_near_duplicates == int((sims.max(1) >= 0.99).sum()) == 3
    assert [g for g, _, _ in found.top[:3]] == sorted([4, 17, 25], key=lambda g: -sims[g].max())
    assert {(g, t) for g, t, _ in found.top[:3]} == {(4, 2), (17, 9), (25, 2)}
    assert len(found.top) == 5 and found.max_similarity == pytest.approx(sims.max())


def test_pareto_front_by_hand():
    cost = [1.0, 2.0, 3.0, 4.0, 2.0, 5.0, np.nan]
    accuracy = [50.0, 60.0, 55.0, 70.0, 60.0, 70.0, 99.0]
    # (3, 55) is beaten by (2, 60); (5, 70) by (4, 70); the two (2, 60) tie and both stay; NaN is never optimal
    np.testing.assert_array_equal(pareto_front(cost, accuracy), [True, True, False, True, True, False, False])
    assert pareto_front([], []).shape == (0,)
