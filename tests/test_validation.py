"""Arguments that cannot work are refused when the object is built, saying what to pass."""

import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import callbacks
from keras_noisewarm import conformal
from keras_noisewarm import metrics
from keras_noisewarm import noise
from keras_noisewarm import ood
from keras_noisewarm import posthoc
from keras_noisewarm import tasks
from keras_noisewarm import validation

HELD_OUT = (np.zeros((4, 3), "float32"), np.zeros(4, "int64"))

CASES = [
    # The warm-up and its callback.
    (lambda: keras_noisewarm.NoiseWarmup(steps=0), "`steps` must be at least 1"),
    (lambda: keras_noisewarm.NoiseWarmup(steps=2.5), "`steps` must be an integer"),
    (lambda: keras_noisewarm.NoiseWarmup(steps=3, num_examples=10), "not both"),
    (lambda: keras_noisewarm.NoiseWarmup(batch_size=0), "batch_size"),
    (lambda: keras_noisewarm.NoiseWarmup(num_classes=1), "num_classes"),
    (lambda: keras_noisewarm.NoiseWarmup(learning_rate=0), "learning_rate"),
    (lambda: keras_noisewarm.NoiseWarmup(optimizer="adamx"), "optimizer"),
    (lambda: keras_noisewarm.NoiseWarmup(noise="laplace"), "Unknown noise 'laplace'"),
    (lambda: keras_noisewarm.NoiseWarmup(noise=noise.Gaussian(), std=2.0), "not both"),
    (lambda: keras_noisewarm.NoiseWarmup(distribution="laplace"), "noise="),
    (lambda: keras_noisewarm.NoiseWarmup(task="segmentation"), "Unknown task"),
    (lambda: keras_noisewarm.NoiseWarmup(from_logits="yes"), "from_logits"),
    (lambda: keras_noisewarm.NoiseWarmup(input_shape=(None, 3)), "unknown dimension"),
    (lambda: keras_noisewarm.NoiseWarmup(seed=-1), "seed"),
    (lambda: keras_noisewarm.NoiseWarmup(verbose=3), "verbose"),
    (lambda: keras_noisewarm.NoiseWarmup(callbacks=["not a callback"]), "Callback"),
    (lambda: keras_noisewarm.NoiseWarmup(noise_source="gpu"), "noise_source"),
    (lambda: callbacks.NoiseWarmupCallback(steps=0), "steps"),
    # The monitor.
    (lambda: callbacks.CalibrationMonitor(None), "validation_data"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT[:1]), "validation_data"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, batch_size=0), "batch_size"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, num_bins=0), "num_bins"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, steps=0), "steps"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, reliability_freq=-1), "reliability_freq"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, prefix=None), "prefix"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, ood_score="odin"), "input gradients"),
    (lambda: callbacks.CalibrationMonitor(HELD_OUT, ood_score="mahalanobis"), "Unknown OOD score"),
    # Metrics.
    (lambda: metrics.ExpectedCalibrationError(num_bins=0), "num_bins"),
    (lambda: metrics.ExpectedCalibrationError(norm="l3"), "norm"),
    (lambda: metrics.ExpectedCalibrationError(from_logits="yes"), "from_logits"),
    (lambda: metrics.NegativeLogLikelihood(sparse_y_true=1), "sparse_y_true"),
    (lambda: metrics.ClasswiseCalibrationError(num_classes=0), "num_classes"),
    # Fitted layers and scores.
    (lambda: posthoc.TemperatureScaling(initial_temperature=0.0), "positive"),
    (lambda: posthoc.VectorScaling(from_logits="no"), "from_logits"),
    (lambda: ood.OODThreshold(alpha=1.5), "alpha"),
    (lambda: ood.OODThreshold(score="odin"), "ODIN needs input gradients"),
    (lambda: ood.OODThreshold(score="max_logit", temperature=2.0), "takes no"),
    (lambda: ood.OODThreshold(score="energy", from_logits=False), "needs logits"),
    (lambda: conformal.LACPredictionSets(alpha=0.0), "alpha"),
    (lambda: conformal.RAPSPredictionSets(penalty=-1.0), "penalty"),
    (lambda: conformal.APSPredictionSets(randomized="yes"), "randomized"),
    (lambda: ood.Energy(temperature=0.0), "temperature"),
    (lambda: ood.ODIN(epsilon=-0.1), "epsilon"),
    (lambda: ood.ODIN(input_std=[1.0, 0.0]), "input_std"),
    # Noise families and tasks.
    (lambda: noise.Gaussian(std=0.0), "std"),
    (lambda: noise.Uniform(mean=float("nan")), "mean"),
    (lambda: noise.PinkNoise(exponent=-1.0), "exponent"),
    (lambda: noise.DataMatched(), "sample"),
    (lambda: noise.DataMatched(np.zeros((0, 3))), "empty"),
    (lambda: noise.Tokens(vocabulary_size=1), "vocabulary_size"),
    (lambda: noise.Tokens(vocabulary_size=10, padding_id=10), "padding_id"),
    (lambda: noise.Tokens(vocabulary_size=10, min_length=3), "needs a `padding_id`"),
    (lambda: noise.Custom(), "step_function"),
    (lambda: tasks.Classification(num_classes=1), "num_classes"),
    (lambda: tasks.Binary(prior=1.0), "prior"),
    (lambda: tasks.MultiLabel(3, prior=[0.5, 0.0, 0.2]), "prior"),
    (lambda: tasks.Regression(std=0.0), "std"),
]


@pytest.mark.parametrize("build,message", CASES, ids=[str(i) for i in range(len(CASES))])
def test_an_object_that_cannot_work_is_never_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_checks_return_normalised_values():
    assert validation.check_int("steps", np.int64(3)) == 3
    assert validation.check_fraction("alpha", 0.1) == 0.1
    assert validation.check_from_logits(np.bool_(True)) is True
    with pytest.raises(ValueError, match="must be an integer"):
        validation.check_int("steps", True)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        validation.check_fraction("alpha", 1.0)
