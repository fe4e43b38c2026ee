"""Tests behind the report's verdicts: paired comparisons on the same items, Holm's correction,
Wilson intervals for proportions and a standard error that counts training seeds as well as items.

No scipy at runtime (numpy, which matplotlib brings, for the permutation test);
tests/analyze/test_significance.py checks each function against scipy on fixed data.

- Paired difference: two runs evaluated on the same items differ per item by d_i = a_i - b_i; the
  mean difference has SE sd(d) / sqrt(n) (sample sd, n - 1). Usually far tighter than
  sqrt(se_a^2 + se_b^2), which treats the two runs as independent samples.
- 0/1 scores: exact McNemar test, i.e. a two-sided binomial test of the discordant pairs
  (b items only A got right, c only B) against p = 1/2: p = min(1, 2 * P(X <= min(b, c))), X ~ Bin(b + c, 1/2).
- Other scores: a paired sign-flip permutation test of the mean difference (exact enumeration up
  to 16 non-zero differences, 2^16 sign patterns; otherwise `resamples` seeded random patterns,
  p = (1 + hits) / (1 + resamples)).
- Holm (1979) step-down correction across the comparisons one report makes.
- Wilson score interval for a proportion: never collapses to a point at 0 % or 100 %.
- Seeds x items: for a configuration trained with S seeds and evaluated on n items,
      SE^2 = SE_items^2 + s_seeds^2 / S
  where SE_items is the SE over items of the per-item score averaged over seeds and s_seeds the
  sample sd of the S per-seed means. Its expectation is sigma_item^2/n + sigma_seed^2/S +
  2 sigma_res^2/(nS): the residual is counted twice (slightly conservative, never negative).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
EXACT_MAX_PAIRS = 16     # sign-flip permutations are enumerated up to 2^16 patterns
RESAMPLES = 20000
_TIE = 1e-12             # relative tolerance: a permuted statistic this close to the observed one counts as a tie


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def sample_sd(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def sem(values: list[float]) -> float | None:
    sd = sample_sd(values)
    return None if sd is None else sd / math.sqrt(len(values))


def is_binary(values) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion successes / n (None when n is 0)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binom_two_sided_half(k: int, n: int) -> float:
    """Two-sided exact binomial test of k successes in n trials against p = 1/2."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value from the discordant counts b (only A right) and c (only B right)."""
    return binom_two_sided_half(min(b, c), b + c)


def normal_two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def sign_flip_pvalue(diffs: list[float], resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided paired permutation test of mean(diffs) == 0 (signs flipped at random under H0).
    Zero differences are dropped first: flipping them changes nothing, so the p-value is the same.
    numpy (matplotlib's dependency) does the arithmetic, imported here so `ck` starts fast."""
    import numpy as np

    d = np.array([x for x in diffs if x != 0], dtype=float)
    n = len(d)
    if n == 0:
        return 1.0
    observed = abs(float(d.sum()))
    tol = _TIE * max(1.0, observed)
    if n <= EXACT_MAX_PAIRS:
        # every sign pattern: row i of the bit matrix is the binary expansion of i
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
        sums = np.abs((1 - 2 * bits) @ d)
        return float(np.count_nonzero(sums >= observed - tol)) / 2 ** n
    rng = np.random.Generator(np.random.PCG64(seed))
    hits, chunk = 0, max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        signs = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) >= observed - tol))
    return (1 + hits) / (1 + resamples)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass
class Paired:
    """A paired comparison of A and B on the items both were scored on."""

    n: int
    diff: float              # mean(A - B) over the shared items
    se: float | None         # sd(d) / sqrt(n)
    test: str                # "McNemar exact" | "paired permutation" | ...
    p: float
    only_a: int = 0          # 0/1 scores: items only A got right
    only_b: int = 0


def paired(a: dict[str, float], b: dict[str, float], seed: int = 0, binary: bool | None = None) -> Paired | None:
    """Compare per-item scores of A and B on their shared item ids; None without shared items.
    `binary=False`: never McNemar (for scores that are themselves differences)."""
    ids = sorted(set(a) & set(b))
    if not ids:
        return None
    xa, xb = [a[i] for i in ids], [b[i] for i in ids]
    d = [x - y for x, y in zip(xa, xb)]
    se = sem(d)
    if binary is not False and is_binary(xa) and is_binary(xb):
        only_a = sum(1 for x, y in zip(xa, xb) if x > y)
        only_b = sum(1 for x, y in zip(xa, xb) if y > x)
        return Paired(len(ids), mean(d), se, "McNemar exact", mcnemar_exact(only_a, only_b), only_a, only_b)
    return Paired(len(ids), mean(d), se, "paired permutation", sign_flip_pvalue(d, seed=seed))


def seed_item_se(seed_means: list[float], item_se: float | None) -> float | None:
    """SE of a configuration's mean over seeds: sqrt(SE_items^2 + s_seeds^2 / S) (module docstring).
    One seed: the item SE alone. Unknown item SE with several seeds: the between-seed part alone."""
    between = sem(seed_means)
    if between is None:
        return item_se
    return math.sqrt(between ** 2 + (item_se or 0.0) ** 2)


def average_items(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Per-item score averaged over seeds, on the items every seed scored."""
    if not per_seed:
        return {}
    ids = set(per_seed[0]).intersection(*per_seed[1:])
    return {i: mean([s[i] for s in per_seed]) for i in sorted(ids)}
