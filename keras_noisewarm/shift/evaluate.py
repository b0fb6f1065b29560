"""How a classifier's accuracy and calibration hold up under corruptions."""

import numpy as np

from keras_noisewarm import compare
from keras_noisewarm import validation
from keras_noisewarm.shift import corruptions as corruptions_lib

# What `evaluate_shift` reports for every corruption and severity.
SHIFT_METRICS = ("accuracy", "ece", "nll", "brier")
CLEAN = "clean"


def shifted_sets(images, corruptions=None, severities=corruptions_lib.SEVERITIES, seed=0):
    """Yields `(corruption, severity, corrupted images)` for every pair.

    Corruption `c` draws with the seed `(seed, i)`, `i` its index in
    `corruption_names()`, for every severity: its severities are nested (see
    `keras_noisewarm.shift.corrupt`), and a corruption's images do not change
    when others are added to or left out of `corruptions`.

    Args:
        images: Images as `corrupt` takes them (`uint8` in `[0, 255]` or
            floats in `[0, 1]`).
        corruptions: Names from `corruption_names()` (default: all).
        severities: Severities from 1 to 5 (default: all).
        seed: A non-negative integer.
    """
    corruptions = _corruptions(corruptions)
    severities = _severities(severities)
    seed = validation.check_int("seed", seed, minimum=0)
    for corruption in corruptions:
        index = corruptions_lib.CORRUPTIONS.index(corruption)
        for severity in severities:
            yield corruption, severity, corruptions_lib.corrupt(
                images, corruption, severity, seed=(seed, index))


def evaluate_shift(model, images, labels, corruptions=None,
                   severities=corruptions_lib.SEVERITIES, preprocess=None, seed=0,
                   num_bins=compare.DEFAULT_NUM_BINS, batch_size=256, from_logits=None,
                   include_clean=True):
    """Accuracy, ECE, NLL and Brier score on every corruption and severity.

    The images are corrupted (`shifted_sets`), passed through `preprocess`
    (the normalisation the model expects, say), predicted and measured with
    `keras_noisewarm.compare.measure`, one row per corruption and severity,
    after a `"clean"` row of severity 0.

    Args:
        model: A Keras model (its `predict` is used), or any callable that
            maps a batch of preprocessed inputs to outputs `(N, K)`.
        images: The held-out images, `uint8` in `[0, 255]` or floats in
            `[0, 1]`, `(N, height, width, channels)`.
        labels: Their integer labels `(N,)`.
        corruptions: Names from `corruption_names()` (default: all).
        severities: Severities from 1 to 5 (default: all).
        preprocess: Callable applied to each (corrupted) batch of images
            before the model, or `None`.
        seed: Seed of the random corruptions.
        num_bins: Bins of the ECE.
        batch_size: Batch size of `model.predict`.
        from_logits: Whether the outputs are logits (`None` detects it).
        include_clean: Whether to measure the uncorrupted images first.

    Returns:
        A list of dicts with `corruption`, `severity` (0 for the clean
        images) and the numbers of `SHIFT_METRICS`.

    Example:

    ```python
    rows = keras_noisewarm.shift.evaluate_shift(
        model, x_test_uint8, y_test, preprocess=lambda x: x / 255.0)
    figure = keras_noisewarm.plot.shift_boxplot(rows, metric="ece")
    ```
    """
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(labels)} labels.")
    validation.check_int("batch_size", batch_size)
    predict = _predictor(model, batch_size)
    preprocess = preprocess or (lambda batch: batch)

    def row(corruption, severity, batch):
        values = compare.measure(predict(preprocess(batch)), labels, num_bins=num_bins,
                                 from_logits=from_logits)
        return dict({"corruption": corruption, "severity": severity},
                    **{name: values[name] for name in SHIFT_METRICS})

    rows = [row(CLEAN, 0, np.asarray(images))] if include_clean else []
    for corruption, severity, corrupted in shifted_sets(images, corruptions, severities, seed):
        rows.append(row(corruption, severity, corrupted))
    return rows


def severity_means(rows, metric="ece"):
    """The mean of `metric` over corruptions at each severity.

    Args:
        rows: Rows of `evaluate_shift`.
        metric: One of `SHIFT_METRICS`.

    Returns:
        `{severity: mean}`, severity 0 being the clean images (if measured).

    Example:

    >>> rows = [{"corruption": "clean", "severity": 0, "ece": 0.1},
    ...         {"corruption": "contrast", "severity": 1, "ece": 0.2},
    ...         {"corruption": "pixelate", "severity": 1, "ece": 0.4}]
    >>> {severity: round(value, 3) for severity, value in severity_means(rows).items()}
    {0: 0.1, 1: 0.3}
    """
    validation.check_choice("metric", metric, SHIFT_METRICS)
    severities = sorted({row["severity"] for row in rows})
    return {severity: float(np.mean([row[metric] for row in rows if row["severity"] == severity]))
            for severity in severities}


def _predictor(model, batch_size):
    predict = getattr(model, "predict", None)
    if predict is not None:
        return lambda batch: predict(batch, batch_size=batch_size, verbose=0)
    if not callable(model):
        raise ValueError(f"`model` must be a Keras model or a callable, got {model!r}.")
    return model


def _corruptions(corruptions):
    if corruptions is None:
        return corruptions_lib.CORRUPTIONS
    if isinstance(corruptions, str):
        corruptions = (corruptions,)
    corruptions = tuple(validation.check_choice("corruption", name, corruptions_lib.CORRUPTIONS)
                        for name in corruptions)
    if not corruptions:
        raise ValueError("`corruptions` is empty.")
    return corruptions


def _severities(severities):
    if isinstance(severities, (int, np.integer)):
        severities = (severities,)
    severities = tuple(validation.check_choice("severity", severity, corruptions_lib.SEVERITIES)
                       for severity in severities)
    if not severities:
        raise ValueError("`severities` is empty.")
    return severities
