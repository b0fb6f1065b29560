"""Warm-up on the backbones people use: keras-hub's ResNet, DenseNet and ViT
image classifiers, a pretrained backbone with a new head, and the CIFAR ResNet.

Every model is tiny (16x16 images, one stage or two) so that each warm-up
takes seconds. The warm-up here is short and fast (Adam with a cosine decay
from 1e-2 over 60 steps of 32 examples) rather than a recipe: what is
tested is what happens to the model, not the recipe's length.
"""

import keras
import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import noise_warmup
from keras_noisewarm.models import cifar_resnet

keras_hub = pytest.importorskip("keras_hub")

SIZE = 16
NUM_CLASSES = 4
CHANCE = 1.0 / NUM_CLASSES
STEPS = 100


def warmup_arguments(**overrides):
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, STEPS)
    return dict(dict(steps=STEPS, batch_size=32, optimizer=keras.optimizers.Adam(schedule),
                     seed=0, verbose=0), **overrides)


def hub_backbone(family):
    shape = (SIZE, SIZE, 3)
    if family == "resnet":
        return keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
            stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
            image_shape=shape)
    if family == "densenet":
        return keras_hub.models.DenseNetBackbone(stackwise_num_repeats=[1, 1], growth_rate=8, image_shape=shape)
    return keras_hub.models.ViTBackbone(
        image_shape=shape, patch_size=4, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32,
        dropout_rate=0.1)


CLASSIFIERS = {
    "resnet": "ResNetImageClassifier",
    "densenet": "DenseNetImageClassifier",
    "vit": "ViTImageClassifier",
}


def hub_classifier(family, **kwargs):
    return getattr(keras_hub.models, CLASSIFIERS[family])(hub_backbone(family), num_classes=NUM_CLASSES, **kwargs)


def all_layers(model):
    return list(model._flatten_layers(include_self=False, recursive=True))


def batchnorm_settings(model):
    return [(layer.name, layer.momentum, layer.epsilon, layer.trainable) for layer in all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)]


def training_mode_confidence(model):
    """Mean top-class probability on N(0, 1) noise with BatchNorm on batch
    statistics: an untrained network's moving statistics (0 and 1) say
    nothing about what it does, so its confidence is measured as it trains."""
    noise = np.random.default_rng(7).standard_normal((256, SIZE, SIZE, 3)).astype("float32")
    logits = keras.ops.convert_to_numpy(model(noise, training=True))
    return float(keras.ops.convert_to_numpy(keras.ops.softmax(logits)).max(axis=-1).mean())


@pytest.mark.parametrize("family", sorted(CLASSIFIERS))
def test_warmup_brings_a_hub_classifier_to_chance_and_keeps_the_users_settings(family):
    classifier = hub_classifier(family)
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    classifier.compile(optimizer=optimizer,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    loss = classifier.loss
    # One layer the user froze: it stays frozen, and frozen afterwards.
    frozen = next(layer for layer in all_layers(classifier.backbone) if layer.weights)
    frozen.trainable = False
    frozen_weights = [w.copy() for w in frozen.get_weights()]
    flags = {id(layer): layer.trainable for layer in all_layers(classifier)}
    batchnorm = batchnorm_settings(classifier)
    before = training_mode_confidence(classifier)

    keras_noisewarm.warmup(classifier, **warmup_arguments())

    after = keras_noisewarm.noise_confidence(classifier, num_examples=512)
    assert after.mean_confidence <= CHANCE + 0.1, (before, after)
    assert after.mean_confidence - CHANCE <= 0.5 * (before - CHANCE), (before, after)
    assert classifier.optimizer is optimizer and int(optimizer.iterations) == 0
    assert classifier.loss is loss and classifier.compiled
    assert {id(layer): layer.trainable for layer in all_layers(classifier)} == flags
    assert batchnorm_settings(classifier) == batchnorm
    for weight, kept in zip(frozen.get_weights(), frozen_weights):
        np.testing.assert_array_equal(weight, kept)
    if family == "vit":
        assert not batchnorm
        assert any(isinstance(layer, keras.layers.LayerNormalization) for layer in all_layers(classifier))
    else:
        # BatchNorm statistics re-estimated on noise ("recalibrate", the default).
        moving = [layer for layer in all_layers(classifier)
                  if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
        assert moving and all(np.any(keras.ops.convert_to_numpy(layer.moving_mean) != 0) for layer in moving)


def test_noise_is_not_preprocessed_twice_for_a_task_with_a_preprocessor():
    """A Task's predict maps its preprocessor over the inputs; the warm-up
    trains the model's own inputs (the preprocessor's outputs), and the
    noise confidence is measured there too."""
    converter = keras_hub.layers.ResNetImageConverter(image_size=(SIZE, SIZE), scale=1 / 255.0)
    preprocessor = keras_hub.models.ResNetImageClassifierPreprocessor(converter)
    classifier = hub_classifier("resnet", preprocessor=preprocessor)
    spec = keras_noisewarm.NoiseWarmup(num_classes=NUM_CLASSES).inspect(classifier)
    assert spec.noise_descriptions[0].startswith("N(0, 1): the model is taken to expect normalised inputs")
    with_preprocessor = keras_noisewarm.noise_confidence(classifier, num_examples=256)
    classifier.preprocessor = None
    without = keras_noisewarm.noise_confidence(classifier, num_examples=256)
    assert with_preprocessor.mean_confidence == pytest.approx(without.mean_confidence, abs=1e-6)
    np.testing.assert_allclose(with_preprocessor.class_frequencies, without.class_frequencies)


def test_fine_tuning_a_preset_head_only_keeps_the_backbone_and_the_users_flags(tmp_path):
    pretrained = hub_classifier("resnet")
    pretrained.save_to_preset(str(tmp_path / "preset"))
    classifier = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "preset"))
    assert isinstance(classifier, keras_hub.models.ResNetImageClassifier)
    for loaded, saved in zip(classifier.get_weights(), pretrained.get_weights()):
        np.testing.assert_array_equal(loaded, saved)

    # A new head on the pretrained backbone.
    backbone = classifier.backbone
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, name="new_head")(features))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    backbone_weights = [w.copy() for w in backbone.get_weights()]  # BatchNorm statistics included
    head_weights = [w.copy() for w in model.get_layer("new_head").get_weights()]
    flags = {id(layer): layer.trainable for layer in all_layers(model)}

    keras_noisewarm.warmup(model, freeze=backbone, **warmup_arguments())

    for weight, kept in zip(backbone.get_weights(), backbone_weights):
        np.testing.assert_array_equal(weight, kept)
    assert any(np.any(w != k) for w, k in zip(model.get_layer("new_head").get_weights(), head_weights))
    assert {id(layer): layer.trainable for layer in all_layers(model)} == flags
    assert backbone.trainable
    after = keras_noisewarm.noise_confidence(model, num_examples=512)
    assert after.mean_confidence <= CHANCE + 0.1, after


def test_the_cifar_resnet_warms_up_to_chance_with_its_batchnorm_settings_kept():
    model = cifar_resnet(18, num_classes=NUM_CLASSES, width=2, input_shape=(SIZE, SIZE, 3))
    batchnorm = batchnorm_settings(model)
    assert {(momentum, epsilon) for _, momentum, epsilon, _ in batchnorm} == {(0.9, 1e-5)}
    before = training_mode_confidence(model)
    keras_noisewarm.warmup(model, **warmup_arguments())
    after = keras_noisewarm.noise_confidence(model, num_examples=512)
    assert after.mean_confidence <= CHANCE + 0.1, (before, after)
    assert after.mean_confidence - CHANCE <= 0.5 * (before - CHANCE), (before, after)
    assert batchnorm_settings(model) == batchnorm


@pytest.mark.parametrize("nested", [False, True])
def test_spatial_augmentation_in_front_of_the_rescaling_keeps_the_noise_on_the_pixel_scale(nested):
    augmentation = [keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.1, 0.1)]
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.Sequential(augmentation)(inputs) if nested else augmentation[1](augmentation[0](inputs))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(x))
    family = keras_noisewarm.NoiseWarmup(num_classes=NUM_CLASSES).inspect(model).families[0]
    assert (family.mean, family.std) == pytest.approx((127.5, 127.5))


def test_augmentation_that_changes_values_is_not_looked_past():
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), keras.layers.RandomContrast(0.2),
        keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten(), keras.layers.Dense(NUM_CLASSES),
    ])
    family = keras_noisewarm.NoiseWarmup(num_classes=NUM_CLASSES).inspect(model).families[0]
    assert (family.mean, family.std) == (0.0, 1.0)


def test_recalibration_reads_only_the_batchnorm_layers_that_were_warmed_up():
    model = cifar_resnet(18, num_classes=NUM_CLASSES, width=2, input_shape=(8, 8, 3))
    stem = model.get_layer("stem_bn")
    stem.trainable = False
    noise = [np.random.default_rng(index).standard_normal((16, 8, 8, 3)).astype("float32") for index in range(2)]
    assert noise_warmup.recalibrate_batchnorm(model, noise) == len(batchnorm_settings(model)) - 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stem.moving_mean), 0.0)
