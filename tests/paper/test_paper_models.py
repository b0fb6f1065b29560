"""The experiments' architectures: seeded, in the paper's block style."""

import numpy as np
import pytest

from paper import models


def test_same_seed_gives_the_same_network_and_another_seed_another():
    first = models.build_mlp((32, 32, 3), depth=3, width=8, seed=0)
    again = models.build_mlp((32, 32, 3), depth=3, width=8, seed=0)
    other = models.build_mlp((32, 32, 3), depth=3, width=8, seed=1)
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])


def test_mlp_takes_images_or_flat_features_and_counts_its_dense_layers():
    from_images = models.build_mlp((32, 32, 3), num_classes=10, depth=4, width=8)
    from_features = models.build_mlp(3072, num_classes=10, depth=4, width=8)
    assert from_images.output_shape == from_features.output_shape == (None, 10)
    dense = [layer for layer in from_images.layers if layer.__class__.__name__ == "Dense"]
    assert len(dense) == 4


def test_cnn_outputs_logits_for_each_class():
    model = models.build_model("cnn", (32, 32, 3), num_classes=7, depth=5, width=4)
    assert model.output_shape == (None, 7)
    convolutions = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [layer.filters for layer in convolutions] == [4, 4, 8, 8]


def test_unknown_architecture_and_too_shallow_networks_are_refused():
    with pytest.raises(ValueError, match="Unknown architecture"):
        models.build_model("resnet", (32, 32, 3))
    with pytest.raises(ValueError, match="at least 2"):
        models.build_mlp(10, depth=1)


def test_monte_carlo_dropout_placement():
    mlp = models.build_mlp((32, 32, 3), depth=4, width=8, seed=0, dropout_rate=0.2)
    names = [type(layer).__name__ for layer in mlp.layers]
    # One dropout ends each of the three hidden blocks.
    assert names.count("MonteCarloDropout") == 3
    assert names[names.index("BatchNormalization") + 1] == "MonteCarloDropout"
    cnn = models.build_model("cnn", (32, 32, 3), depth=4, width=4, seed=0, dropout_rate=0.3)
    names = [type(layer).__name__ for layer in cnn.layers]
    # Only on the last feature map, so the convolutions run once per input.
    assert names.count("MonteCarloDropout") == 1
    assert names[names.index("MonteCarloDropout") + 1] == "GlobalAveragePooling2D"
    assert cnn.layers[names.index("MonteCarloDropout")].rate == 0.3
    assert "MonteCarloDropout" not in [type(layer).__name__ for layer in
                                       models.build_mlp((8,), depth=3, width=4, seed=0).layers]
