"""The architectures of the paper's experiments."""

import keras

ARCHITECTURES = ("mlp", "cnn")


@keras.saving.register_keras_serializable(package="paper")
class MonteCarloDropout(keras.layers.Dropout):
    """Dropout that stays on at inference: each forward pass is one sample.

    Monte Carlo dropout (Gal & Ghahramani, 2016) averages the predictions of
    several such passes. Only the dropout is stochastic: BatchNormalization
    and the other layers run in inference mode as usual.
    """

    def call(self, inputs, training=None):
        return super().call(inputs, training=True)


def build_model(architecture, input_shape, num_classes=10, depth=6, width=256, seed=0,
                dropout_rate=None):
    """`build_mlp` or `build_cnn` by name (`"mlp"` or `"cnn"`)."""
    builders = {"mlp": build_mlp, "cnn": build_cnn}
    if architecture not in builders:
        raise ValueError(
            f"Unknown architecture {architecture!r}: expected one of {ARCHITECTURES}."
        )
    return builders[architecture](input_shape, num_classes, depth, width, seed, dropout_rate)


def build_mlp(input_shape, num_classes=10, depth=6, width=256, seed=0, dropout_rate=None):
    """The paper's MLP: blocks of Dense (He-normal, zero bias) -> ReLU -> BatchNorm.

    Args:
        input_shape: Shape of one input, e.g. `(32, 32, 3)` (flattened by
            the model), or the number of input features (3072 for flattened
            CIFAR-10).
        num_classes: Number of output logits.
        depth: Number of Dense layers, the output layer included (>= 2).
        width: Units of each hidden layer.
        seed: Seed of the initial weights: the same seed gives the same
            network, so runs with and without warm-up start alike. `None`
            keeps the global seed as it is (`compare_warmup` sets it).
        dropout_rate: If given, a `MonteCarloDropout` of this rate ends
            every hidden block (Monte Carlo dropout).

    Returns:
        An uncompiled `keras.Sequential` model that outputs logits.
    """
    if depth < 2:
        raise ValueError(f"`depth` must be at least 2 (one hidden layer), got {depth}.")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    input_shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    layers = [keras.Input(input_shape)]
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten())
    for _ in range(depth - 1):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
        if dropout_rate is not None:
            layers.append(MonteCarloDropout(dropout_rate))
    layers.append(keras.layers.Dense(num_classes, kernel_initializer="he_normal"))
    return keras.Sequential(layers, name=f"mlp_{depth}x{width}")


def build_cnn(input_shape, num_classes=10, depth=4, width=32, seed=0, dropout_rate=None):
    """A plain CNN in the paper's block style: Conv (He-normal) -> ReLU -> BatchNorm.

    Every second block halves the resolution with a 2x2 max-pool and doubles
    the channels; global average pooling and a Dense layer give the logits.

    Args:
        input_shape: Shape of one image, `(height, width, channels)`.
        num_classes: Number of output logits.
        depth: Number of layers with weights, the output layer included
            (>= 2): `depth - 1` convolutional blocks.
        width: Channels of the first convolutional block.
        seed: Seed of the initial weights (`None`: the global seed as set).
        dropout_rate: If given, a `MonteCarloDropout` of this rate on the
            last convolutional feature map, before the pooling (Monte Carlo
            dropout of the classifier's features; the convolutions then run
            once for any number of samples).

    Returns:
        An uncompiled `keras.Sequential` model that outputs logits.
    """
    if depth < 2:
        raise ValueError(f"`depth` must be at least 2 (one conv block), got {depth}.")
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            f"The CNN needs images of shape (height, width, channels), got {input_shape}."
        )
    if seed is not None:
        keras.utils.set_random_seed(seed)
    layers = [keras.Input(tuple(input_shape))]
    channels = width
    for block in range(depth - 1):
        layers += [
            keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
        if block % 2 == 1:
            layers.append(keras.layers.MaxPooling2D())
            channels *= 2
    if dropout_rate is not None:
        layers.append(MonteCarloDropout(dropout_rate))
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes, kernel_initializer="he_normal"),
    ]
    return keras.Sequential(layers, name=f"cnn_{depth}x{width}")
