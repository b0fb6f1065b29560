"""MSP, max logit, energy and ODIN against a hand computation on a tiny fixed network."""

import keras
import numpy as np
import pytest

from keras_noisewarm import ood

CHANNEL_STD = np.array([0.2, 0.5, 1.0], dtype="float32")


def _tiny_network():
    """Inputs (2, 3) channels-last -> Flatten -> Dense(5, tanh) -> Dense(4) logits."""
    model = keras.Sequential(
        [
            keras.Input((2, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.Dense(4),
        ]
    )
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(0, 0.8, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


def _tiny_inputs():
    return np.random.default_rng(1).normal(size=(7, 2, 3)).astype("float32")


def _numpy_logits(model, inputs):
    kernel_1, bias_1, kernel_2, bias_2 = (w.astype(np.float64) for w in model.get_weights())
    hidden = np.tanh(inputs.reshape(len(inputs), -1).astype(np.float64) @ kernel_1 + bias_1)
    return hidden @ kernel_2 + bias_2


def _numpy_softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _numpy_odin_gradient(model, inputs, temperature):
    """d/dx of the cross-entropy of softmax(logits / T) at the predicted class."""
    kernel_1, bias_1, kernel_2, bias_2 = (w.astype(np.float64) for w in model.get_weights())
    flat = inputs.reshape(len(inputs), -1).astype(np.float64)
    hidden = np.tanh(flat @ kernel_1 + bias_1)
    logits = hidden @ kernel_2 + bias_2
    one_hot = np.eye(logits.shape[1])[logits.argmax(axis=1)]
    # d CE / d logits = (softmax(logits / T) - one_hot) / T, then back through the layers.
    d_logits = (_numpy_softmax(logits / temperature) - one_hot) / temperature
    d_flat = ((d_logits @ kernel_2.T) * (1 - hidden**2)) @ kernel_1.T
    return d_flat.reshape(inputs.shape)


def test_max_softmax_probability_matches_numpy_at_several_temperatures():
    model, inputs = _tiny_network(), _tiny_inputs()
    logits = _numpy_logits(model, inputs)
    for temperature in (1.0, 2.5):
        scores = ood.MaxSoftmaxProbability(temperature=temperature)(model, inputs)
        expected = _numpy_softmax(logits / temperature).max(axis=1)
        np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_max_logit_matches_numpy():
    model, inputs = _tiny_network(), _tiny_inputs()
    np.testing.assert_allclose(
        ood.MaxLogit()(model, inputs), _numpy_logits(model, inputs).max(axis=1), rtol=1e-5
    )


def test_energy_score_is_temperature_times_logsumexp_of_logits_over_temperature():
    model, inputs = _tiny_network(), _tiny_inputs()
    logits = _numpy_logits(model, inputs)
    for temperature in (1.0, 3.0):
        expected = temperature * np.log(np.exp(logits / temperature).sum(axis=1))
        np.testing.assert_allclose(
            ood.Energy(temperature=temperature)(model, inputs), expected, rtol=1e-5
        )


def test_odin_perturbation_steps_against_the_gradient_sign_divided_by_channel_std():
    model, inputs = _tiny_network(), _tiny_inputs()
    temperature, epsilon = 1000.0, 0.01
    gradient = _numpy_odin_gradient(model, inputs, temperature)
    # The comparison of signs is only meaningful away from zero.
    assert np.min(np.abs(gradient)) > 1e-6

    perturbed = ood.odin_perturbation(
        model, inputs, temperature=temperature, epsilon=epsilon, input_std=CHANNEL_STD
    )

    expected = inputs - epsilon * np.sign(gradient) / CHANNEL_STD
    np.testing.assert_allclose(keras.ops.convert_to_numpy(perturbed), expected, rtol=1e-6)


def test_odin_score_matches_numpy_hand_computation():
    model, inputs = _tiny_network(), _tiny_inputs()
    for temperature, epsilon in ((1000.0, 0.0014), (2.0, 0.05)):
        gradient = _numpy_odin_gradient(model, inputs, temperature)
        perturbed = inputs - epsilon * np.sign(gradient) / CHANNEL_STD
        expected = _numpy_softmax(_numpy_logits(model, perturbed) / temperature).max(axis=1)

        scorer = ood.ODIN(temperature=temperature, epsilon=epsilon, input_std=CHANNEL_STD)
        scores = scorer(model, inputs, batch_size=3)  # several batches

        np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_odin_step_raises_the_confidence_in_the_predicted_class():
    model, inputs = _tiny_network(), _tiny_inputs()
    before = ood.MaxSoftmaxProbability(temperature=2.0)(model, inputs)
    after = ood.ODIN(temperature=2.0, epsilon=0.01)(model, inputs)
    assert np.all(after > before)


def test_odin_without_perturbation_is_msp_at_the_same_temperature():
    model, inputs = _tiny_network(), _tiny_inputs()
    np.testing.assert_allclose(
        ood.ODIN(temperature=1000.0, epsilon=0.0)(model, inputs),
        ood.MaxSoftmaxProbability(temperature=1000.0)(model, inputs),
        rtol=1e-6,
    )


def test_probability_outputs_give_the_same_msp_and_odin_as_logits():
    logit_model, inputs = _tiny_network(), _tiny_inputs()
    probability_model = keras.Sequential([logit_model, keras.layers.Softmax()])
    for make_scorer in (
        lambda from_logits: ood.MaxSoftmaxProbability(temperature=3.0, from_logits=from_logits),
        lambda from_logits: ood.ODIN(temperature=3.0, epsilon=0.01, from_logits=from_logits),
    ):
        np.testing.assert_allclose(
            make_scorer(False)(probability_model, inputs),
            make_scorer(True)(logit_model, inputs),
            rtol=1e-4,
        )


def test_energy_and_max_logit_refuse_probability_outputs():
    model = keras.Sequential([_tiny_network(), keras.layers.Softmax()])
    for scorer in (ood.Energy(from_logits=False), ood.MaxLogit(from_logits=False)):
        with pytest.raises(ValueError, match="needs logits"):
            scorer(model, _tiny_inputs())


def test_get_builds_scorers_from_names_configs_and_rejects_unknown_names():
    assert isinstance(ood.get("msp"), ood.MaxSoftmaxProbability)
    assert ood.get("ODIN").temperature == 1000.0
    assert ood.get("odin").epsilon == 0.0014
    config = keras.saving.serialize_keras_object(ood.Energy(temperature=2.0, name="e2"))
    rebuilt = ood.get(config)
    assert isinstance(rebuilt, ood.Energy)
    assert (rebuilt.temperature, rebuilt.key) == (2.0, "e2")
    with pytest.raises(ValueError, match="Unknown OOD score"):
        ood.get("mahalanobis")


def test_evaluate_ood_tabulates_every_metric_of_every_score():
    model = _tiny_network()
    rng = np.random.default_rng(3)
    id_inputs = rng.normal(size=(40, 2, 3)).astype("float32")
    ood_inputs = rng.normal(0, 3, size=(30, 2, 3)).astype("float32")
    scores = ["msp", ood.Energy(temperature=2.0, name="energy_t2"), "odin"]

    table = ood.evaluate_ood(model, id_inputs, ood_inputs, scores=scores, positive="out")

    assert list(table) == ["msp", "energy_t2", "odin"]
    energy_id = ood.Energy(temperature=2.0)(model, id_inputs)
    energy_ood = ood.Energy(temperature=2.0)(model, ood_inputs)
    assert table["energy_t2"] == {
        "auroc": ood.auroc(energy_id, energy_ood),
        "aupr_in": ood.aupr_in(energy_id, energy_ood),
        "aupr_out": ood.aupr_out(energy_id, energy_ood),
        "fpr_at_95_tpr": ood.fpr_at_95_tpr(energy_id, energy_ood, positive="out"),
    }


def test_evaluate_ood_positive_switch_changes_only_the_fpr():
    model = _tiny_network()
    rng = np.random.default_rng(4)
    id_inputs = rng.normal(size=(40, 2, 3)).astype("float32")
    ood_inputs = rng.normal(0, 3, size=(30, 2, 3)).astype("float32")
    as_in = ood.evaluate_ood(model, id_inputs, ood_inputs, scores=["energy"], positive="in")
    as_out = ood.evaluate_ood(model, id_inputs, ood_inputs, scores=["energy"], positive="out")
    for name in ("auroc", "aupr_in", "aupr_out"):
        assert as_in["energy"][name] == as_out["energy"][name]
    energy_id = ood.Energy()(model, id_inputs)
    energy_ood = ood.Energy()(model, ood_inputs)
    assert as_out["energy"]["fpr_at_95_tpr"] == ood.fpr_at_95_tpr(
        energy_id, energy_ood, positive="out"
    )


def test_evaluate_ood_rejects_two_scores_with_one_name():
    model = _tiny_network()
    with pytest.raises(ValueError, match="distinct"):
        ood.evaluate_ood(
            model, _tiny_inputs(), _tiny_inputs(), scores=["msp", ood.MaxSoftmaxProbability(2.0)]
        )


def test_format_ood_table_prints_one_aligned_row_per_score():
    text = ood.format_ood_table(
        {
            "msp": {"auroc": 0.91234, "fpr_at_95_tpr": 0.5},
            "energy": {"auroc": 0.8, "fpr_at_95_tpr": 0.25},
        }
    )
    assert text.splitlines() == [
        "score   auroc  fpr_at_95_tpr",
        "msp     0.912  0.500",
        "energy  0.800  0.250",
    ]


def test_negative_entropy_matches_numpy_and_is_usable_by_name_everywhere():
    model, inputs = _tiny_network(), _tiny_inputs()
    logits = _numpy_logits(model, inputs)
    probabilities = _numpy_softmax(logits)
    expected = np.sum(probabilities * np.log(probabilities), axis=1)
    np.testing.assert_allclose(ood.NegativeEntropy()(model, inputs), expected, rtol=1e-5, atol=1e-6)
    # The same on probabilities: the score reads them through their logarithm.
    softmax_model = keras.Sequential([model, keras.layers.Softmax()])
    np.testing.assert_allclose(ood.get("entropy")(softmax_model, inputs), expected, rtol=1e-4, atol=1e-5)
    assert "entropy" in ood.score_names()
    # By name in the threshold layer, in evaluate_ood and in the monitor.
    threshold = ood.OODThreshold(score="entropy", alpha=0.25).fit(logits.astype("float32"))
    flagged = keras.ops.convert_to_numpy(threshold(logits.astype("float32")))
    np.testing.assert_array_equal(flagged, expected < float(keras.ops.convert_to_numpy(threshold.threshold)))
    table = ood.evaluate_ood(model, inputs, 3 * inputs, scores=["entropy"])
    assert table["entropy"]["auroc"] == ood.auroc(expected, ood.NegativeEntropy()(model, 3 * inputs))
    from keras_noisewarm.callbacks import CalibrationMonitor

    assert isinstance(CalibrationMonitor((inputs, np.zeros(7)), ood_score="entropy").ood_scorer,
                      ood.NegativeEntropy)


def test_a_new_score_registers_once_under_its_names():
    with pytest.raises(ValueError, match="already registered"):
        ood.register_score("msp")(type("Another", (ood.OutputScore,), {}))
