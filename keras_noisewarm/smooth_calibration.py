"""Smooth ECE (Błasiok & Nakkiran, 2023): calibration error without bins.

The binned ECE jumps when a confidence crosses a bin edge and depends on
the number of bins. The smooth ECE smooths the residuals instead: for
predictions `f_i` in `[0, 1]` (a classifier's top-label confidences) and
outcomes `y_i` (1 where the prediction is right), the residual density at
`t` is

    h(t) = (1/N) sum_i K_sigma(t, f_i) (y_i - f_i),

with `K_sigma` the Gaussian kernel of standard deviation `sigma` reflected
at 0 and 1 (so that it integrates to 1 over `[0, 1]` from any `f_i`), and

    smECE_sigma = integral over [0, 1] of |h(t)| dt.

Smoothing more never raises it (the reflected kernel averages), so there is
exactly one bandwidth `sigma*` with `smECE_sigma* = sigma*`: the error is
measured at the scale it has. Błasiok & Nakkiran show that this is a
consistent calibration measure, within constant factors of the distance to
the nearest calibrated predictor; their `relplot` package finds `sigma*` by
bisection. So does `smooth_calibration_error`, to a tolerance of `1e-4`
(relplot: ten halvings of `[0, 1]`), between `MIN_BANDWIDTH = 0.001`
(relplot's `eps`; a set whose smoothed residuals still cancel at that scale
gets 0.001) and 1.

Computation: the residuals are split linearly onto a uniform grid of at
least 40 points per `sigma` (at least 1,000 intervals), the reflected
kernel is applied by an FFT convolution of the evenly extended grid, and
`|h|` is integrated by the trapezoidal rule. Mass is conserved exactly, so
a set whose residuals all have one sign gets `|mean residual|` at every
bandwidth. Float64 NumPy on the host, no sample weights.
"""

import math

import numpy as np
import scipy.signal

from keras_noisewarm import selective
from keras_noisewarm import validation

MIN_BANDWIDTH = 1e-3
BANDWIDTH_TOLERANCE = 1e-4
MIN_INTERVALS = 1000
POINTS_PER_BANDWIDTH = 40
# The kernel is cut where it has fallen to exp(-(6^2) / 2), 1.5e-8 of its peak.
KERNEL_REACH = 6.0


def _grid_size(bandwidth):
    return max(MIN_INTERVALS, math.ceil(POINTS_PER_BANDWIDTH / bandwidth)) + 1


def _on_grid(positions, values, size):
    """Splits each value linearly between the two grid points around it."""
    scaled = np.clip(positions, 0.0, 1.0) * (size - 1)
    lower = np.minimum(np.floor(scaled).astype(np.int64), size - 2)
    upper_share = scaled - lower
    grid = np.zeros(size)
    np.add.at(grid, lower, values * (1.0 - upper_share))
    np.add.at(grid, lower + 1, values * upper_share)
    return grid


def reflected_smooth(masses, bandwidth):
    """Smooths point masses on the uniform grid of `[0, 1]` with the reflected Gaussian.

    Args:
        masses: Float array `(G,)`: the mass at grid points `j / (G - 1)`.
        bandwidth: Standard deviation of the Gaussian, in units of `[0, 1]`.

    Returns:
        The smoothed density at the grid points, `(G,)`: sum over the masses
        of the Gaussian density at every reflection (about 0 and 1) of their
        position. It integrates (trapezoidal rule) to the total mass, but
        for the kernel's tails beyond 6 sigma; where it is 0, the FFT leaves
        round-off of about 1e-17 of either sign.
    """
    size = len(masses)
    spacing = 1.0 / (size - 1)
    reach = int(math.ceil(KERNEL_REACH * bandwidth / spacing))
    offsets = np.arange(-reach, reach + 1)
    kernel = np.exp(-0.5 * (offsets * spacing / bandwidth) ** 2) / (
        bandwidth * math.sqrt(2.0 * math.pi))
    # Every mass at each of its images under the reflections about 0 and 1
    # (the grid extended evenly, period 2(G - 1)). A mass at an end is its
    # own first reflection and so counts twice, as in the kernel
    # sum_k phi(t - s - 2k) + phi(t + s - 2k) at s = 0 or 1.
    period = 2 * (size - 1)
    positions = np.arange(-reach, size + reach) % period
    positions = np.where(positions > size - 1, period - positions, positions)
    extended = masses.astype(np.float64)[positions]
    extended[(positions == 0) | (positions == size - 1)] *= 2.0
    return scipy.signal.fftconvolve(extended, kernel, mode="valid")


def _trapezoid(values):
    spacing = 1.0 / (len(values) - 1)
    return spacing * (np.sum(values) - (values[0] + values[-1]) / 2.0)


def smooth_error_at(predictions, outcomes, bandwidth):
    """`smECE_sigma`: the integral of the absolute smoothed residual density.

    Args:
        predictions: Floats `(N,)` in `[0, 1]`.
        outcomes: Floats `(N,)` in `[0, 1]` (0/1 for events).
        bandwidth: `sigma > 0`.

    Example:

    >>> # All right at confidence 0.8: every residual is +0.2, at any bandwidth.
    >>> round(smooth_error_at([0.8, 0.8], [1, 1], bandwidth=0.05), 6)
    0.2
    """
    predictions, outcomes = _checked(predictions, outcomes)
    bandwidth = validation.check_positive_number("bandwidth", bandwidth)
    size = _grid_size(bandwidth)
    masses = _on_grid(predictions, (outcomes - predictions) / len(predictions), size)
    return float(_trapezoid(np.abs(reflected_smooth(masses, bandwidth))))


def smooth_calibration_error(predictions, outcomes):
    """The smooth ECE of binary predictions and its bandwidth.

    Args:
        predictions: Predicted probabilities `(N,)` in `[0, 1]`.
        outcomes: Outcomes `(N,)`, 0 or 1 (or frequencies in `[0, 1]`).

    Returns:
        `(smooth_ece, bandwidth)`: the error at the fixed point `sigma*`
        (bisected to within `1e-4`, upper end) and `sigma*` itself.

    Example:

    >>> # Residuals +0.5 and -0.5 at the same confidence cancel at any scale.
    >>> error, bandwidth = smooth_calibration_error([0.5, 0.5], [1, 0])
    >>> round(error, 6), bandwidth
    (0.0, 0.001)
    """
    predictions, outcomes = _checked(predictions, outcomes)
    residuals = (outcomes - predictions) / len(predictions)

    def error(bandwidth):
        size = _grid_size(bandwidth)
        return _trapezoid(np.abs(reflected_smooth(_on_grid(predictions, residuals, size),
                                                  bandwidth)))

    if error(MIN_BANDWIDTH) <= MIN_BANDWIDTH:
        return float(error(MIN_BANDWIDTH)), MIN_BANDWIDTH
    if error(1.0) >= 1.0:
        return float(error(1.0)), 1.0
    # error(sigma) - sigma falls from positive to negative: bisect its root.
    low, high = MIN_BANDWIDTH, 1.0
    while high - low > BANDWIDTH_TOLERANCE:
        middle = (low + high) / 2.0
        if error(middle) > middle:
            low = middle
        else:
            high = middle
    return float(error(high)), float(high)


def smooth_ece(y_true, y_pred, from_logits=None, return_bandwidth=False):
    """The smooth ECE of a classifier's top-label confidences.

    The confidence of a prediction is its largest probability and its
    outcome is 1 where that class is the label, as for
    `keras_noisewarm.metrics.ExpectedCalibrationError`.

    Args:
        y_true: Integer labels `(N,)` (or one-hot rows).
        y_pred: Logits or probabilities `(N, K)`.
        from_logits: Whether `y_pred` holds logits; `None` detects it.
        return_bandwidth: Also return the bandwidth `sigma*`.

    Returns:
        The smooth ECE (a float in `[0, 1]`), or `(smooth_ece, bandwidth)`.

    Example:

    >>> # Right twice at confidence 0.9: residuals +0.1.
    >>> round(smooth_ece([0, 1], [[0.9, 0.1], [0.1, 0.9]]), 4)
    0.1
    """
    confidences, errors = selective.confidences_and_errors(y_true, y_pred, from_logits)
    value, bandwidth = smooth_calibration_error(confidences, 1.0 - errors)
    return (value, bandwidth) if return_bandwidth else value


def smooth_calibration_curve(predictions, outcomes, bandwidth=None, num_points=201):
    """The smoothed reliability curve: the kernel regression of outcomes on predictions.

    Args:
        predictions: Predicted probabilities `(N,)` in `[0, 1]`.
        outcomes: Outcomes `(N,)` in `[0, 1]`.
        bandwidth: Kernel standard deviation; default: the smooth ECE's
            `sigma*`.
        num_points: Number of points `t` of the curve, evenly over `[0, 1]`.

    Returns:
        A dict of float64 arrays: `"t"`; `"accuracy"`, the kernel-weighted
        mean outcome at `t` (the reflected Gaussian kernel); `"density"`,
        the kernel density of the predictions at `t` (integrates to 1); and
        the floats `"bandwidth"` and `"smooth_ece"`.
    """
    predictions, outcomes = _checked(predictions, outcomes)
    value, fixed_point = smooth_calibration_error(predictions, outcomes)
    if bandwidth is None:
        bandwidth = fixed_point
    else:
        bandwidth = validation.check_positive_number("bandwidth", bandwidth)
        value = smooth_error_at(predictions, outcomes, bandwidth)
    validation.check_int("num_points", num_points, minimum=2)
    size = _grid_size(bandwidth)
    count = len(predictions)
    # Clipped: the FFT leaves round-off of 1e-17 where the densities are 0.
    density = np.maximum(reflected_smooth(
        _on_grid(predictions, np.full(count, 1.0 / count), size), bandwidth), 0.0)
    hits = np.maximum(reflected_smooth(_on_grid(predictions, outcomes / count, size),
                                       bandwidth), 0.0)
    grid = np.linspace(0.0, 1.0, size)
    t = np.linspace(0.0, 1.0, num_points)
    density_t = np.interp(t, grid, density)
    hits_t = np.interp(t, grid, hits)
    accuracy = np.divide(hits_t, density_t, out=np.full_like(t, np.nan), where=density_t > 1e-12)
    return {"t": t, "accuracy": accuracy, "density": density_t, "bandwidth": float(bandwidth),
            "smooth_ece": float(value)}


def _checked(predictions, outcomes):
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    outcomes = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    if predictions.shape != outcomes.shape or predictions.size == 0:
        raise ValueError(
            "Need one outcome per prediction (and at least one prediction), got shapes "
            f"{predictions.shape} and {outcomes.shape}."
        )
    for name, values in (("predictions", predictions), ("outcomes", outcomes)):
        if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
            raise ValueError(f"The {name} must lie in [0, 1].")
    return predictions, outcomes
