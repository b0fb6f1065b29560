"""One configured example of every serialisable object of the package, and
what each one computes, for tests/test_serialization.py and the fresh
process it starts (tests/serialization_loader.py).

Both processes build the same fixed data, so what an object computes can be
compared across the process boundary.
"""

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import conformal
from keras_noisewarm import metrics
from keras_noisewarm import noise
from keras_noisewarm import ood
from keras_noisewarm import posthoc
from keras_noisewarm import tasks
from keras_noisewarm import feedback_alignment
from keras_noisewarm.callbacks import NoiseWarmupCallback
from keras_noisewarm.callbacks import WarmupStopping

PACKAGE_PREFIX = "keras_noisewarm>"
NUM_CLASSES = 5


@keras.saving.register_keras_serializable(package="keras_noisewarm_tests")
def laplace_noise(shape, seed, dtype):
    """A user's noise function, registered as the Custom family asks."""
    u = keras.random.uniform(shape, -0.5, 0.5, dtype=dtype, seed=seed)
    return -keras.ops.sign(u) * keras.ops.log1p(-2 * keras.ops.abs(u))


# name -> (factory of a configured instance, shape and dtype of a noise draw)
EXAMPLES = {
    # Metrics, each with arguments other than its defaults.
    "ExpectedCalibrationError": lambda: metrics.ExpectedCalibrationError(
        num_bins=7, norm="l2", bin_confidence="center", from_logits=True, name="ece_l2"
    ),
    "MaximumCalibrationError": lambda: metrics.MaximumCalibrationError(num_bins=9),
    "AdaptiveCalibrationError": lambda: metrics.AdaptiveCalibrationError(
        num_bins=6, num_histogram_bins=500
    ),
    "DebiasedL2CalibrationError": lambda: metrics.DebiasedL2CalibrationError(num_bins=4),
    "ClasswiseCalibrationError": lambda: metrics.ClasswiseCalibrationError(NUM_CLASSES, num_bins=8),
    "MultiLabelCalibrationError": lambda: metrics.MultiLabelCalibrationError(
        NUM_CLASSES, num_bins=6, average="micro", from_logits=True
    ),
    "NegativeLogLikelihood": lambda: metrics.NegativeLogLikelihood(from_logits=True, name="nll_x"),
    "BrierScore": lambda: metrics.BrierScore(name="brier_x"),
    # Selective prediction.
    "AreaUnderRiskCoverageCurve": lambda: metrics.AreaUnderRiskCoverageCurve(num_bins=500),
    "ExcessAreaUnderRiskCoverageCurve": lambda: metrics.ExcessAreaUnderRiskCoverageCurve(
        from_logits=True, name="e_aurc_x"
    ),
    "SelectiveAccuracy": lambda: metrics.SelectiveAccuracy(coverage=0.6),
    # Regression metrics, on [mean, spread] predictions.
    "GaussianNegativeLogLikelihood": lambda: metrics.GaussianNegativeLogLikelihood(spread="std"),
    "ExpectedNormalizedCalibrationError": lambda: metrics.ExpectedNormalizedCalibrationError(
        num_bins=4, num_histogram_bins=1000, spread="log_variance"
    ),
    "IntervalCoverage": lambda: metrics.IntervalCoverage(level=0.8, name="coverage80"),
    "IntervalCoverageError": lambda: metrics.IntervalCoverageError(level=0.5),
    "QuantileCalibrationError": lambda: metrics.QuantileCalibrationError(num_levels=19, norm="l2"),
    # Fitted layers.
    "TemperatureScaling": lambda: posthoc.TemperatureScaling(name="temperature"),
    "VectorScaling": lambda: posthoc.VectorScaling(name="vector"),
    "IsotonicCalibration": lambda: posthoc.IsotonicCalibration(max_knots=50, name="isotonic"),
    "OODThreshold": lambda: ood.OODThreshold(
        score=ood.Energy(temperature=2.0), alpha=0.2, name="threshold"
    ),
    "LACPredictionSets": lambda: conformal.LACPredictionSets(alpha=0.2, name="lac"),
    "APSPredictionSets": lambda: conformal.APSPredictionSets(
        alpha=0.15, randomized=False, seed=3, name="aps"
    ),
    "RAPSPredictionSets": lambda: conformal.RAPSPredictionSets(
        alpha=0.2, penalty=0.05, k_reg=2, randomized=False, seed=4, name="raps"
    ),
    # Noise families.
    "Gaussian": lambda: noise.Gaussian(mean=0.5, std=2.0),
    "Uniform": lambda: noise.Uniform(mean=(0.0, 1.0, 2.0), std=(1.0, 2.0, 3.0)),
    "DataMatched": lambda: noise.DataMatched(mean=(1.0, 2.0, 3.0), std=(0.5, 3.0, 1.0),
                                             distribution="uniform"),
    "PinkNoise": lambda: noise.PinkNoise(mean=0.1, std=0.9, exponent=1.5),
    "Tokens": lambda: noise.Tokens(50, padding_id=0, min_length=3),
    "Custom": lambda: noise.Custom(step_function=laplace_noise),
    # Tasks.
    "Classification": lambda: tasks.Classification(7, from_logits=True, one_hot=True),
    "Binary": lambda: tasks.Binary(prior=0.3, from_logits=False),
    "MultiLabel": lambda: tasks.MultiLabel(4, prior=[0.1, 0.2, 0.3, 0.4]),
    "Regression": lambda: tasks.Regression(mean=[1.0, 2.0], std=[0.5, 4.0], target_shape=(2,),
                                           loss="mean_absolute_error"),
    # OOD scorers.
    "MaxSoftmaxProbability": lambda: ood.MaxSoftmaxProbability(temperature=2.0, name="msp2"),
    "MaxLogit": lambda: ood.MaxLogit(from_logits=True),
    "Energy": lambda: ood.Energy(temperature=3.0),
    "NegativeEntropy": lambda: ood.NegativeEntropy(name="entropy_x"),
    "ODIN": lambda: ood.ODIN(temperature=100.0, epsilon=0.002, input_std=[0.5, 0.25, 1.0]),
    # The warm-up and its callback.
    "NoiseWarmup": lambda: keras_noisewarm.NoiseWarmup(
        num_classes=NUM_CLASSES, steps=7, batch_size=16,
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, name="warmup_sgd"), learning_rate=0.02,
        noise=noise.Gaussian(0.0, 2.0), task=tasks.Classification(NUM_CLASSES),
        from_logits=True, input_shape=(16,), seed=3, verbose=0,
        callbacks=[NoiseWarmupCallback(steps=2, seed=5)], noise_source="stream",
    ),
    "NoiseWarmupCallback": lambda: NoiseWarmupCallback(NUM_CLASSES, steps=3, seed=1, noise="uniform"),
    "WarmupStopping": lambda: WarmupStopping(progress=0.6, min_delta=0.05, patience=2, check_every=10),
    # Feedback-alignment layers (their fixed feedback matrices are weights,
    # saved and reloaded by the feedback-alignment tests).
    "FeedbackAlignmentDense": lambda: feedback_alignment.FeedbackAlignmentDense(
        7, activation="relu", feedback_initializer=keras.initializers.RandomNormal(0.0, 0.3),
        name="fa_dense",
    ),
    "FeedbackAlignmentConv2D": lambda: feedback_alignment.FeedbackAlignmentConv2D(
        4, 3, padding="same", name="fa_conv"
    ),
}

REGRESSION_METRICS = (
    "GaussianNegativeLogLikelihood", "ExpectedNormalizedCalibrationError", "IntervalCoverage",
    "IntervalCoverageError", "QuantileCalibrationError",
)

NOISE_DRAWS = {
    "Gaussian": ((6, 3), "float32"),
    "Uniform": ((6, 3), "float32"),
    "DataMatched": ((6, 3), "float32"),
    "PinkNoise": ((2, 8, 8, 1), "float32"),
    "Tokens": ((6, 8), "int32"),
    "Custom": ((6, 3), "float32"),
}


def data():
    """Fixed held-out logits and labels, and inputs of a small classifier."""
    rng = np.random.default_rng(0)
    logits = (2.0 * rng.normal(size=(200, NUM_CLASSES))).astype("float32")
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = (rng.random((200, 1)) > probabilities.cumsum(axis=1)).sum(axis=1).clip(0, NUM_CLASSES - 1)
    inputs = rng.normal(size=(64, 16)).astype("float32")
    return logits, labels, inputs


def behaviour(name, obj):
    """What `obj` computes on the fixed data, as a dict of plain values.

    Layers are left out: their fitted weights decide, and the `.keras` file
    carries those (checked on a model).
    """
    logits, labels, _ = data()
    if name in REGRESSION_METRICS:
        rng = np.random.default_rng(1)
        targets = rng.normal(size=(100, 1))
        predictions = np.concatenate([0.5 * targets + rng.normal(size=(100, 1)),
                                      rng.uniform(0.5, 2.0, size=(100, 1))], axis=1)
        obj.reset_state()
        obj.update_state(targets, predictions)
        return {"result": float(obj.result())}
    if name == "MultiLabelCalibrationError":
        obj.reset_state()
        obj.update_state(np.eye(NUM_CLASSES)[labels[:100]], logits[:100])
        return {"result": float(obj.result())}
    if isinstance(obj, keras.metrics.Metric):
        obj.reset_state()
        obj.update_state(labels[:100], logits[:100])
        return {"result": float(obj.result())}
    if name in NOISE_DRAWS:
        shape, dtype = NOISE_DRAWS[name]
        sample = obj.step_sample(shape, keras.random.SeedGenerator(0), dtype)
        return {"sample": keras.ops.convert_to_numpy(sample).tolist()}
    if isinstance(obj, ood.OutputScore):
        return {"scores": keras.ops.convert_to_numpy(obj.score_outputs(logits[:20])).tolist()}
    if isinstance(obj, tasks.Task):
        return {"target_shape": list(obj.target_shape((NUM_CLASSES,) if name != "MultiLabel" else (4,))),
                "loss": keras.saving.serialize_keras_object(obj.loss())}
    if isinstance(obj, keras_noisewarm.NoiseWarmup):
        return {"num_steps": obj.num_steps(), "input_shape_is_tuple": isinstance(obj.input_shape, tuple),
                "callbacks": [type(callback).__name__ for callback in obj.callbacks],
                "optimizer": keras.saving.serialize_keras_object(obj.make_optimizer())}
    return {}


def calibrated_model():
    """A classifier with every fitted layer appended, each fitted on held-out logits."""
    logits, labels, _ = data()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,))
    model_logits = keras.layers.Dense(NUM_CLASSES, name="head")(inputs)
    outputs = [model_logits]
    for name in ("TemperatureScaling", "VectorScaling", "IsotonicCalibration", "OODThreshold", "LACPredictionSets",
                 "APSPredictionSets", "RAPSPredictionSets"):
        layer = EXAMPLES[name]()
        needs_labels = name != "OODThreshold"
        layer.fit(logits, labels if needs_labels else None)
        outputs.append(layer(model_logits))
    return keras.Model(inputs, outputs, name="calibrated")


METRIC_NAMES = [
    "ExpectedCalibrationError", "MaximumCalibrationError", "AdaptiveCalibrationError",
    "DebiasedL2CalibrationError", "ClasswiseCalibrationError", "NegativeLogLikelihood",
    "BrierScore",
]


def compiled_classifier():
    """A classifier compiled with every metric."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(NUM_CLASSES)], name="classifier")
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[EXAMPLES[name]() for name in METRIC_NAMES],
    )
    return model


def layer_weights(model):
    return {
        f"{layer.name}/{weight.name}": keras.ops.convert_to_numpy(weight)
        for layer in model.layers
        for weight in layer.weights
    }
