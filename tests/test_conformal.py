"""Split conformal prediction and the OOD acceptance threshold: hand values,
layers that save and export, and coverage over many random splits of a real
model's outputs."""

import math

import keras
import numpy as np
import pytest

import local_data

from keras_noisewarm import conformal
from keras_noisewarm import datasets
from keras_noisewarm import ood

ALPHA = 0.1
NUM_CALIBRATION = 100
NUM_SPLITS = 2000
# Two-sided 0.1% level of a normal test statistic.
Z_CRITICAL = 3.29


@pytest.fixture(scope="module")
def mnist_test_logits():
    """Logits on the 10,000 MNIST test images of an MLP trained on 3,000 others."""
    path = local_data.local_copy("mnist")
    if path is None:
        pytest.skip("no local copy of MNIST (shared/data/mnist or $KERAS_NOISEWARM_DATA)")
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(path)
    x_train = x_train[:3000].reshape(-1, 784).astype("float32") / 255.0
    x_test = x_test.reshape(-1, 784).astype("float32") / 255.0
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train[:3000], epochs=3, batch_size=100, verbose=0)
    return model.predict(x_test, batch_size=1000, verbose=0), y_test


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


# --- quantiles and thresholds -------------------------------------------------


def test_conformal_rank_is_ceil_of_n_plus_one_times_one_minus_alpha():
    assert conformal.conformal_rank(99, 0.1) == 90  # 100 * 0.9 = 90 exactly
    assert conformal.conformal_rank(100, 0.1) == 91  # 101 * 0.9 = 90.9
    assert conformal.conformal_rank(100, 0.07) == 94  # 101 * 0.93 = 93.93
    assert conformal.conformal_rank(8, 0.1) == 9  # 9 * 0.9 = 8.1: more than n


def test_conformal_rank_is_not_moved_by_float_rounding_of_alpha():
    # In floats 10 * (1 - 0.7) is 3.0000000000000004, whose ceiling is 4; the rank is 3.
    assert math.ceil(10 * (1 - 0.7)) == 4
    assert conformal.conformal_rank(9, 0.7) == 3


def test_conformal_quantile_is_the_rank_th_smallest_score():
    scores = [0.5, 0.1, 0.4, 0.2, 0.3]
    # n = 5, alpha = 0.4: ceil(6 * 0.6) = 4th smallest.
    assert conformal.conformal_quantile(scores, 0.4) == 0.4
    # alpha = 0.2: ceil(6 * 0.8) = 5th smallest.
    assert conformal.conformal_quantile(scores, 0.2) == 0.5
    # alpha = 0.1: ceil(6 * 0.9) = 6 > 5, no finite quantile has the guarantee.
    assert conformal.conformal_quantile(scores, 0.1) == math.inf


def test_ood_acceptance_threshold_is_the_rank_th_largest_score():
    id_scores = [0.5, 0.1, 0.4, 0.2, 0.3]
    assert conformal.ood_acceptance_threshold(id_scores, 0.4) == 0.2  # 4th largest
    assert conformal.ood_acceptance_threshold(id_scores, 0.2) == 0.1  # 5th largest
    assert conformal.ood_acceptance_threshold(id_scores, 0.1) == -math.inf


def test_quantiles_reject_bad_alpha_and_empty_scores():
    for alpha in (0.0, 1.0, -0.1, "0.1", True):
        with pytest.raises(ValueError, match="alpha"):
            conformal.conformal_quantile([0.1, 0.2], alpha)
    with pytest.raises(ValueError, match="at least one"):
        conformal.conformal_quantile([], 0.1)
    with pytest.raises(ValueError, match="NaN"):
        conformal.ood_acceptance_threshold([0.1, np.nan], 0.1)


# --- scores and sets -----------------------------------------------------------

PROBABILITIES = np.array([[0.2, 0.7, 0.1], [0.5, 0.3, 0.2]], dtype="float32")


def test_lac_scores_are_one_minus_probability():
    np.testing.assert_allclose(_to_numpy(conformal.lac_scores(PROBABILITIES)), 1 - PROBABILITIES)


def test_aps_scores_are_the_mass_up_to_and_including_each_class():
    # Row 1 ranks 0.7, 0.2, 0.1; row 2 ranks 0.5, 0.3, 0.2.
    expected = [[0.9, 0.7, 1.0], [0.5, 0.8, 1.0]]
    scores = conformal.aps_scores(PROBABILITIES, randomized=False)
    np.testing.assert_allclose(_to_numpy(scores), expected, rtol=1e-6)


def test_randomized_aps_scores_lie_between_the_mass_above_and_the_mass_including():
    probabilities = _softmax(np.random.default_rng(0).normal(size=(500, 6))).astype("float32")
    including = _to_numpy(conformal.aps_scores(probabilities, randomized=False))
    randomized = _to_numpy(conformal.aps_scores(probabilities, seed=0))
    above = including - probabilities
    assert np.all(randomized >= above - 1e-6) and np.all(randomized <= including + 1e-6)
    # One u per example: (score - mass above) / probability is the same for every class.
    u = (randomized - above) / probabilities
    np.testing.assert_allclose(u, np.repeat(u[:, :1], 6, axis=1), atol=1e-4)
    assert 0.4 < u[:, 0].mean() < 0.6


def test_raps_scores_add_the_penalty_for_ranks_beyond_k_reg():
    scores = conformal.raps_scores(PROBABILITIES, penalty=0.5, k_reg=1, randomized=False)
    # Ranks 1, 2, 3 pay 0, 0.5, 1.0 on top of the APS scores.
    expected = [[0.9 + 0.5, 0.7, 1.0 + 1.0], [0.5, 0.8 + 0.5, 1.0 + 1.0]]
    np.testing.assert_allclose(_to_numpy(scores), expected, rtol=1e-6)


def test_label_scores_pick_each_true_label():
    scores = np.array([[0.1, 0.9, 0.3], [0.4, 0.6, 0.2]], dtype="float32")
    np.testing.assert_allclose(_to_numpy(conformal.label_scores(scores, [2, 0])), [0.3, 0.4])


def test_prediction_sets_hold_exactly_the_classes_scoring_at_most_the_quantile():
    scores = np.array([[0.1, 0.9, 0.3], [0.4, 0.6, 0.2]], dtype="float32")
    sets = _to_numpy(conformal.prediction_sets(scores, 0.3))
    assert sets.dtype == bool
    np.testing.assert_array_equal(sets, [[True, False, True], [False, False, True]])
    assert conformal.coverage(sets, [2, 0]) == 0.5
    assert conformal.average_set_size(sets) == 1.5
    assert _to_numpy(conformal.prediction_sets(scores, math.inf)).all()


def test_aps_sets_add_classes_from_the_most_to_the_least_likely():
    probabilities = _softmax(3 * np.random.default_rng(1).normal(size=(300, 8))).astype("float32")
    sets = _to_numpy(conformal.prediction_sets(conformal.aps_scores(probabilities, seed=1), 0.8))
    for row_probabilities, row_set in zip(probabilities, sets):
        if row_set.any():
            assert row_probabilities[row_set].min() >= row_probabilities[~row_set].max(initial=0)


# --- coverage over many random splits of a real model's outputs ----------------


def _split_coverages(true_label_scores, seed):
    """Test coverage of the conformal sets over many random calibration/test splits.

    A label is in its prediction set exactly when its score is at most the
    quantile (checked in test_prediction_sets_hold_exactly_the_classes_...),
    so coverage is counted on the true-label scores, without building
    thousands of (N, K) sets.
    """
    rng = np.random.default_rng(seed)
    coverages = []
    for _ in range(NUM_SPLITS):
        order = rng.permutation(len(true_label_scores))
        calibration, test = order[:NUM_CALIBRATION], order[NUM_CALIBRATION:]
        quantile = conformal.conformal_quantile(true_label_scores[calibration], ALPHA)
        coverages.append(np.mean(true_label_scores[test] <= quantile))
    return np.array(coverages)


def _assert_few_ties_where_the_quantile_falls(scores, low, high):
    """The band's upper end holds for distinct scores: check the region where
    the quantiles of small calibration sets fall (float32 ties elsewhere, e.g.
    at probability 1, do not matter)."""
    ordered = np.sort(scores)
    region = ordered[int(low * len(ordered)) : int(high * len(ordered))]
    assert len(np.unique(region)) >= 0.999 * len(region)


def _assert_mean_within_band(values, low, high):
    """The mean of `values` lies in [low, high] up to Z_CRITICAL standard errors."""
    mean = values.mean()
    standard_error = values.std(ddof=1) / math.sqrt(len(values))
    assert low - Z_CRITICAL * standard_error <= mean <= high + Z_CRITICAL * standard_error, (
        f"mean {mean:.5f} (standard error {standard_error:.5f}) outside [{low:.5f}, {high:.5f}]"
    )
    return mean, standard_error


@pytest.mark.parametrize("method", ["lac", "aps", "raps"])
def test_mean_coverage_over_random_splits_lies_in_the_conformal_band(mnist_test_logits, method):
    logits, labels = mnist_test_logits
    probabilities = _to_numpy(keras.ops.softmax(logits, axis=-1))
    class_scores = _to_numpy(
        {
            "lac": lambda: conformal.lac_scores(probabilities),
            "aps": lambda: conformal.aps_scores(probabilities, seed=2),
            "raps": lambda: conformal.raps_scores(probabilities, penalty=0.01, k_reg=1, seed=3),
        }[method]()
    )
    true_label_scores = _to_numpy(conformal.label_scores(class_scores, labels))
    _assert_few_ties_where_the_quantile_falls(true_label_scores, 0.75, 0.99)

    coverages = _split_coverages(true_label_scores, seed=4)

    _, standard_error = _assert_mean_within_band(
        coverages, 1 - ALPHA, 1 - ALPHA + 1 / (NUM_CALIBRATION + 1)
    )
    # The test is sharp enough to catch an off-by-one rank, which moves the
    # mean coverage by about 1 / (n + 1): that is over 2 * Z_CRITICAL
    # standard errors, so it cannot hide inside the tolerance.
    assert standard_error < 1 / (NUM_CALIBRATION + 1) / (2 * Z_CRITICAL)


def test_mean_in_distribution_acceptance_of_the_ood_threshold_lies_in_the_band(
    mnist_test_logits,
):
    logits, _ = mnist_test_logits
    id_scores = _to_numpy(ood.energy_score(logits))
    _assert_few_ties_where_the_quantile_falls(id_scores, 0.01, 0.25)
    rng = np.random.default_rng(5)
    acceptance = []
    for _ in range(NUM_SPLITS):
        order = rng.permutation(len(id_scores))
        held_out, test = order[:NUM_CALIBRATION], order[NUM_CALIBRATION:]
        threshold = conformal.ood_acceptance_threshold(id_scores[held_out], ALPHA)
        acceptance.append(np.mean(id_scores[test] >= threshold))
    _assert_mean_within_band(
        np.array(acceptance), 1 - ALPHA, 1 - ALPHA + 1 / (NUM_CALIBRATION + 1)
    )


# --- layers ---------------------------------------------------------------------


def _logits_and_labels(num_examples, seed):
    rng = np.random.default_rng(seed)
    logits = 2 * rng.normal(size=(num_examples, 5)).astype("float32")
    cumulative = _softmax(logits.astype(np.float64)).cumsum(axis=1)
    labels = np.minimum((rng.random((num_examples, 1)) > cumulative).sum(axis=1), 4)
    return logits, labels


@pytest.mark.parametrize(
    "layer_class, kwargs",
    [
        (conformal.LACPredictionSets, {}),
        (conformal.APSPredictionSets, {"randomized": False}),
        (conformal.RAPSPredictionSets, {"randomized": False, "penalty": 0.1, "k_reg": 2}),
    ],
)
def test_conformal_layer_sets_are_the_sets_of_the_functions(layer_class, kwargs):
    logits, labels = _logits_and_labels(400, seed=6)
    layer = layer_class(alpha=0.2, **kwargs).fit(logits[:200], labels[:200])

    score_function = {
        conformal.LACPredictionSets: conformal.lac_scores,
        conformal.APSPredictionSets: lambda p: conformal.aps_scores(p, randomized=False),
        conformal.RAPSPredictionSets: lambda p: conformal.raps_scores(
            p, penalty=0.1, k_reg=2, randomized=False
        ),
    }[layer_class]
    probabilities = _softmax(logits.astype(np.float64)).astype("float32")
    quantile = conformal.conformal_quantile(
        conformal.label_scores(score_function(probabilities[:200]), labels[:200]), 0.2
    )
    assert float(_to_numpy(layer.quantile)) == pytest.approx(quantile, rel=1e-6)
    np.testing.assert_array_equal(
        _to_numpy(layer(logits[200:])),
        _to_numpy(conformal.prediction_sets(score_function(probabilities[200:]), quantile)),
    )


def test_conformal_layer_on_probabilities_matches_the_layer_on_logits():
    logits, labels = _logits_and_labels(300, seed=7)
    on_logits = conformal.LACPredictionSets(alpha=0.2).fit(logits, labels)
    probabilities = _to_numpy(keras.ops.softmax(logits))
    on_probabilities = conformal.LACPredictionSets(alpha=0.2, from_logits=False)
    on_probabilities.fit(probabilities, labels)
    np.testing.assert_array_equal(
        _to_numpy(on_logits(logits)), _to_numpy(on_probabilities(probabilities))
    )


def test_unfitted_conformal_layer_returns_every_class():
    logits, _ = _logits_and_labels(10, seed=8)
    assert _to_numpy(conformal.APSPredictionSets(seed=0)(logits)).all()


def test_randomized_aps_layer_draws_fresh_u_inside_predict():
    logits, labels = _logits_and_labels(2000, seed=9)
    layer = conformal.APSPredictionSets(alpha=0.2, seed=0).fit(logits[:1000], labels[:1000])
    model_input = keras.Input((5,))
    model = keras.Model(model_input, layer(model_input))
    first = model.predict(logits[1000:], verbose=0)
    second = model.predict(logits[1000:], verbose=0)
    assert first.dtype == bool and first.shape == (1000, 5)
    assert not np.array_equal(first, second)
    # Both draws still cover about 1 - alpha of these exchangeable examples.
    for sets in (first, second):
        assert abs(conformal.coverage(sets, labels[1000:]) - 0.8) < 0.05


def test_ood_threshold_layer_accepts_at_or_above_the_fitted_threshold():
    logits, _ = _logits_and_labels(99, seed=10)
    layer = ood.OODThreshold(score="max_logit", alpha=0.1).fit(logits)
    # ceil(100 * 0.9) = 90th largest of 99 distinct maxima.
    expected_threshold = np.sort(logits.max(axis=1))[::-1][89]
    assert float(_to_numpy(layer.threshold)) == pytest.approx(expected_threshold)
    unknown = _to_numpy(layer(logits))
    np.testing.assert_array_equal(unknown, logits.max(axis=1) < expected_threshold)
    assert (~unknown).sum() == 90


def test_ood_threshold_layer_rejects_logit_scores_of_probabilities():
    with pytest.raises(ValueError, match="needs logits"):
        ood.OODThreshold(score="energy", from_logits=False)
    layer = ood.OODThreshold(score="energy")
    with pytest.raises(ValueError, match="needs logits"):
        layer.fit(np.full((4, 2), 0.5, dtype="float32"))


def _deployed_model():
    """A classifier returning its logits, LAC sets and OOD acceptance, all fitted."""
    logits, labels = _logits_and_labels(300, seed=11)
    model_input = keras.Input((5,))
    sets = conformal.LACPredictionSets(alpha=0.2, name="sets").fit(logits, labels)
    threshold = ood.OODThreshold(score="energy", alpha=0.1, name="accept").fit(logits)
    model = keras.Model(model_input, [model_input, sets(model_input), threshold(model_input)])
    return model, logits


def test_fitted_quantile_and_threshold_survive_keras_save_and_load(tmp_path):
    model, logits = _deployed_model()
    path = str(tmp_path / "deployed.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for name, weight in (("sets", "quantile"), ("accept", "threshold")):
        assert float(_to_numpy(getattr(reloaded.get_layer(name), weight))) == pytest.approx(
            float(_to_numpy(getattr(model.get_layer(name), weight)))
        )
    before_and_after = zip(model.predict(logits, verbose=0), reloaded.predict(logits, verbose=0))
    for before, after in before_and_after:
        np.testing.assert_array_equal(after, before)


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras 3.15 exports from TensorFlow and JAX only "
    "(from torch, reload the .keras file under TensorFlow and export there)",
)
def test_fitted_quantile_and_threshold_survive_export(tmp_path):
    import tensorflow as tf

    model, logits = _deployed_model()
    path = str(tmp_path / "exported")
    model.export(path, format="tf_saved_model", verbose=False)
    exported = tf.saved_model.load(path)  # keep a reference: it owns the variables
    outputs = exported.serve(tf.constant(logits))
    for expected, actual in zip(model.predict(logits, verbose=0), outputs):
        np.testing.assert_array_equal(np.asarray(actual), expected)
