"""Float64 NumPy references of the package's metrics and scores, for tests.

Written from the documented definitions, not from the library's code:

- Bins are `[a, b)` with the last one closed. Their edges are `k / num_bins`
  rounded to float32, and a confidence (in float32) lies in bin `b` when
  exactly `b` interior edges are at or below it.
- The top label is the first class of largest probability (as `argmax`).
- Sums, means and scores are float64.
"""

import numpy as np

# keras.backend.epsilon(): the metrics clip probabilities there, as Keras's
# cross-entropy losses do.
EPSILON = 1e-7


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def edges(num_bins):
    return np.array([np.float32(k / num_bins) for k in range(num_bins + 1)], np.float32)


def bin_of(confidences, num_bins):
    """The bin of each confidence: how many interior edges are at or below it."""
    confidences = np.asarray(confidences, np.float32)
    interior = edges(num_bins)[1:-1]
    return (confidences[:, None] >= interior[None, :]).sum(axis=1)


def top_label(probabilities):
    """(float32 confidence, first predicted class) of each row."""
    probabilities = np.asarray(probabilities, np.float32)
    return probabilities.max(axis=-1), probabilities.argmax(axis=-1)


def _weights(weights, count):
    return np.ones(count) if weights is None else np.asarray(weights, np.float64)


def binned_error(confidences, correct, weights, bins, num_bins, norm="l1", centers=None,
                 debiased=False):
    """The calibration error of given per-prediction bins (float64)."""
    confidences = np.asarray(confidences, np.float64)
    correct = np.asarray(correct, np.float64)
    total = weights.sum()
    if total == 0:
        return 0.0
    terms = []
    for b in range(num_bins):
        in_bin = bins == b
        count = weights[in_bin].sum()
        if count == 0:
            continue
        accuracy = np.dot(weights[in_bin], correct[in_bin]) / count
        confidence = (np.dot(weights[in_bin], confidences[in_bin]) / count
                      if centers is None else centers[b])
        terms.append((count, accuracy, confidence))
    if debiased:
        squared = sum(
            n * ((a - c) ** 2 - a * (1 - a) / (n - 1)) for n, a, c in terms if n >= 2
        )
        return float(np.sqrt(max(squared / total, 0.0)))
    if norm == "l1":
        return float(sum(n * abs(a - c) for n, a, c in terms) / total)
    if norm == "l2":
        return float(np.sqrt(sum(n * (a - c) ** 2 for n, a, c in terms) / total))
    return float(max(abs(a - c) for _, a, c in terms))


def ece(probabilities, labels, weights=None, num_bins=15, norm="l1", bin_confidence="mean"):
    """ExpectedCalibrationError (and MCE with norm="max") of probabilities `(N, K)`."""
    confidences, predicted = top_label(probabilities)
    correct = predicted == np.asarray(labels)
    centers = None
    if bin_confidence == "center":
        bounds = edges(num_bins).astype(np.float64)
        centers = (bounds[:-1] + bounds[1:]) / 2
    return binned_error(confidences, correct, _weights(weights, len(correct)),
                        bin_of(confidences, num_bins), num_bins, norm, centers)


def debiased_l2(probabilities, labels, weights=None, num_bins=15):
    confidences, predicted = top_label(probabilities)
    correct = predicted == np.asarray(labels)
    return binned_error(confidences, correct, _weights(weights, len(correct)),
                        bin_of(confidences, num_bins), num_bins, debiased=True)


def adaptive_ece(probabilities, labels, weights=None, num_bins=15, num_fine_bins=10_000):
    """The documented adaptive ECE: fine bins grouped by the middle of their cumulative weight."""
    confidences, predicted = top_label(probabilities)
    correct = predicted == np.asarray(labels)
    weights = _weights(weights, len(correct))
    fine = bin_of(confidences, num_fine_bins)
    fine_counts = np.bincount(fine, weights=weights, minlength=num_fine_bins)
    middles = np.cumsum(fine_counts) - fine_counts / 2
    total = fine_counts.sum()
    groups = np.zeros(num_fine_bins) if total == 0 else np.floor(middles * num_bins / total)
    groups = np.minimum(groups, num_bins - 1).astype(int)
    return binned_error(confidences, correct, weights, groups[fine], num_bins)


def classwise(probabilities, labels, weights=None, num_bins=15):
    probabilities = np.asarray(probabilities, np.float32)
    labels = np.asarray(labels)
    weights = _weights(weights, len(labels))
    errors = [
        binned_error(probabilities[:, k], labels == k, weights,
                     bin_of(probabilities[:, k], num_bins), num_bins)
        for k in range(probabilities.shape[-1])
    ]
    return float(np.mean(errors))


def nll(outputs, labels, from_logits, weights=None):
    """Mean -log p(label); probabilities clipped to [EPSILON, 1]."""
    labels = np.asarray(labels)
    weights = _weights(weights, len(labels))
    if from_logits:
        log_p = log_softmax(outputs)
    else:
        log_p = np.log(np.clip(np.asarray(outputs, np.float64), EPSILON, 1.0))
    scores = -log_p[np.arange(len(labels)), labels]
    return float(np.dot(weights, scores) / weights.sum())


def brier(probabilities, labels, weights=None):
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels)
    weights = _weights(weights, len(labels))
    one_hot = np.eye(probabilities.shape[-1])[labels]
    scores = ((probabilities - one_hot) ** 2).sum(axis=-1)
    return float(np.dot(weights, scores) / weights.sum())


def auroc(id_scores, ood_scores):
    """P(an in-distribution score exceeds an OOD score), ties counted half."""
    id_scores = np.asarray(id_scores, np.float64)[:, None]
    ood_scores = np.asarray(ood_scores, np.float64)[None, :]
    return float(np.mean((id_scores > ood_scores) + 0.5 * (id_scores == ood_scores)))


def mean_nll_gradient(logits, labels, scale, bias):
    """Gradient of the mean NLL of softmax(logits * scale + bias) in (scale, bias)."""
    logits = np.asarray(logits, np.float64)
    residual = softmax(logits * scale + bias)
    residual[np.arange(len(labels)), labels] -= 1.0
    residual /= len(labels)
    return (residual * logits).sum(axis=0), residual.sum(axis=0)


def fitted_temperature(logits, labels, low=1e-2, high=1e2, iterations=200):
    """The temperature of least mean NLL, by golden-section search on log T."""
    logits = np.asarray(logits, np.float64)
    rows = np.arange(len(labels))

    def mean_nll(log_temperature):
        return -log_softmax(logits / np.exp(log_temperature))[rows, labels].mean()

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1) / 2
    for _ in range(iterations):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if mean_nll(c) < mean_nll(d):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))
