"""Uncertainty of evaluation metrics and the "is this difference real?" rule used everywhere.

A metric that is a mean over samples (accuracy, mean, MAE) gets its standard error from the
per-sample scores: sd / sqrt(n) (for 0/1 scores: the binomial SE with n - 1). Two independent
estimates differ by d with SE sqrt(se_a^2 + se_b^2); |d| < 2 SE is "within noise". This SE counts
the test set's sampling noise only - not the spread between training seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

NOISE_SE = 2.0  # without a test: a difference under this many standard errors is reported as within noise
ALPHA = 0.05    # with a test: a Holm-adjusted p-value at or above this is within noise
MEAN_METRICS = ("accuracy", "mean", "mae")
_LOWER_BETTER = ("mae", "rmse", "mse", "loss", "error", "perplexity")


def lower_is_better(metric: str) -> bool:
    """'scorer/mae', 'rmse', 'val_loss' -> True; accuracy, f1 -> False."""
    name = metric.rsplit("/", 1)[-1].lower()
    return any(name == k or name.endswith(f"_{k}") for k in _LOWER_BETTER)


def bounded_01(metric: str) -> bool:
    """Metrics that live in [0, 1] (their plot axes are clamped there)."""
    name = metric.rsplit("/", 1)[-1].lower()
    return any(k in name for k in ("accuracy", "f1", "precision", "recall"))


def standard_error(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def metric_se(metric: str, value: float | None, sample_values: dict[str, float] | list[float],
              log_stderr: float | None) -> float | None:
    """SE of a reported metric: from the per-sample scores when the metric is their mean (checked),
    else the log's own stderr metric, else None (unknown)."""
    vals = list(sample_values.values()) if isinstance(sample_values, dict) else list(sample_values)
    name = metric.rsplit("/", 1)[-1].lower()
    if value is not None and vals and name in MEAN_METRICS and math.isclose(sum(vals) / len(vals), value, abs_tol=1e-9):
        return standard_error(vals)
    return log_stderr


def combined_se(*ses: float | None) -> float | None:
    if any(s is None for s in ses):
        return None
    return math.sqrt(sum(s * s for s in ses))


@dataclass
class Difference:
    value: float
    se: float | None
    test: str = ""               # the test behind `p` (significance.py), "" when none was made
    p: float | None = None
    p_holm: float | None = None  # Holm-adjusted across the comparisons of one report section

    @property
    def within_noise(self) -> bool | None:
        """True / False; None when nothing can be claimed. With a test: its Holm-adjusted p-value
        decides (p >= 0.05 is within noise); without one, the 2 SE rule."""
        if self.value == 0:
            return True
        if self.p_holm is not None:
            return self.p_holm >= ALPHA
        if self.se is None:
            return None
        return abs(self.value) < NOISE_SE * self.se

    def to_dict(self) -> dict:
        return {"value": self.value, "se": self.se, "within_noise": self.within_noise, "test": self.test,
                "p": self.p, "p_holm": self.p_holm}


def difference(a: float, se_a: float | None, b: float, se_b: float | None) -> Difference:
    return Difference(a - b, combined_se(se_a, se_b))
