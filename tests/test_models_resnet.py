"""The CIFAR ResNet: the authors' architecture and initialisation."""

import keras
import numpy as np
import pytest

from keras_noisewarm.models import BLOCKS_PER_STAGE
from keras_noisewarm.models import cifar_resnet


def layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_the_stem_keeps_the_resolution_and_the_stages_halve_it():
    model = cifar_resnet(18, num_classes=10, width=4)
    stem = model.get_layer("stem_conv")
    assert stem.kernel_size == (3, 3) and stem.strides == (1, 1) and not stem.use_bias
    assert not layers_of(model, keras.layers.MaxPooling2D)
    # 32x32 into the first stage, then 16, 8, 4.
    sizes = [model.get_layer(f"stage{stage}_block1_add").output.shape[1:] for stage in (1, 2, 3, 4)]
    assert sizes == [(32, 32, 4), (16, 16, 8), (8, 8, 16), (4, 4, 32)]
    assert model.output_shape == (None, 10)
    assert model.get_layer("logits").activation.__name__ == "linear"


@pytest.mark.parametrize("depth", sorted(BLOCKS_PER_STAGE))
def test_depth_gives_the_number_of_weighted_layers(depth):
    model = cifar_resnet(depth, width=2, input_shape=(8, 8, 3))
    blocks = sum(BLOCKS_PER_STAGE[depth])
    convolutions = layers_of(model, keras.layers.Conv2D)
    # The stem, two per block and three projection shortcuts; the Dense layer.
    assert len(convolutions) == 1 + 2 * blocks + 3
    assert 1 + 2 * blocks + 1 == depth
    assert len(layers_of(model, keras.layers.BatchNormalization)) == len(convolutions)


def test_weights_are_kaiming_normal_fan_in_and_batchnorm_as_pytorch():
    keras.utils.set_random_seed(0)
    model = cifar_resnet(18, width=64, input_shape=(8, 8, 3))
    kernel = keras.ops.convert_to_numpy(model.get_layer("stage4_block2_conv2").kernel)
    fan_in = 3 * 3 * 512
    assert kernel.std() == pytest.approx(np.sqrt(2.0 / fan_in), rel=0.01)
    # Not truncated: some weights lie beyond two standard deviations.
    assert np.mean(np.abs(kernel) > 2 * np.sqrt(2.0 / fan_in)) == pytest.approx(0.0455, abs=0.005)
    dense = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    assert dense.std() == pytest.approx(np.sqrt(2.0 / 512), rel=0.1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("logits").bias), 0.0)
    for layer in layers_of(model, keras.layers.BatchNormalization):
        assert (layer.momentum, layer.epsilon) == (0.9, 1e-5)


def test_the_same_seed_builds_the_same_network():
    keras.utils.set_random_seed(3)
    first = cifar_resnet(18, width=2, input_shape=(8, 8, 3)).get_weights()
    keras.utils.set_random_seed(3)
    second = cifar_resnet(18, width=2, input_shape=(8, 8, 3)).get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_without_the_top_it_is_a_backbone_of_pooled_features():
    backbone = cifar_resnet(34, width=2, input_shape=(8, 8, 3), include_top=False)
    assert backbone.output_shape == (None, 16)
    assert not layers_of(backbone, keras.layers.Dense)


@pytest.mark.parametrize("arguments, message", [
    ({"depth": 50}, "depth"),
    ({"width": 0}, "width"),
    ({"num_classes": 1}, "num_classes"),
    ({"input_shape": (32, 32)}, "input_shape"),
    ({"batchnorm_momentum": 1.0}, "batchnorm_momentum"),
])
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        cifar_resnet(**arguments)
