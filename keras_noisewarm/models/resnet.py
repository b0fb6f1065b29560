"""The CIFAR-style ResNet of the paper's from-scratch experiments.

The authors' code (and most CIFAR-10 work) changes the ImageNet ResNet in
one place: the stem is a single 3x3 convolution with stride 1 and no
max-pool, so a 32x32 image keeps its resolution into the first stage (the
ImageNet stem, a 7x7 stride-2 convolution and a max-pool, which keras-hub's
`ResNetBackbone` builds, leaves 8x8). Four stages of BasicBlocks follow with
`width`, `2 * width`, `4 * width` and `8 * width` channels, the last three
starting with stride 2; then global average pooling and a Dense layer.

The initialisation is the authors': every convolution and the Dense layer
draw Kaiming-normal weights (fan-in, gain sqrt(2), not truncated), no
convolution has a bias, BatchNorm starts at scale 1 and offset 0. With
PyTorch's BatchNorm defaults (momentum 0.1 there, 0.9 in Keras's
convention; epsilon 1e-5). Its output are logits, so an untrained network
is overconfident: what the warm-up corrects.
"""

import keras

from keras_noisewarm import validation

# depth: BasicBlocks in each of the four stages.
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def kaiming_normal(seed=None):
    """PyTorch's `kaiming_normal_(mode="fan_in", nonlinearity="relu")`: N(0, 2 / fan_in)."""
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=seed)


def cifar_resnet(
    depth=18,
    num_classes=10,
    width=64,
    input_shape=(32, 32, 3),
    include_top=True,
    batchnorm_momentum=0.9,
    batchnorm_epsilon=1e-5,
    name=None,
):
    """A CIFAR-style ResNet-18 or ResNet-34 (He et al. 2016) as the paper trains it.

    The stem is a 3x3 convolution with stride 1 and no max-pool (see the
    module docstring), followed by four stages of BasicBlocks (two 3x3
    convolutions with BatchNorm, a 1x1 convolution with BatchNorm on the
    shortcut where the shape changes), global average pooling and, with
    `include_top`, a Dense layer of `num_classes` logits. Weights are
    Kaiming-normal (fan-in), as in the authors' code; seed them with
    `keras.utils.set_random_seed`.

    Args:
        depth: 18 or 34.
        num_classes: Number of output logits (with `include_top`).
        width: Channels of the stem and of the first stage (64 in the
            paper); the stages have `width * (1, 2, 4, 8)`.
        input_shape: Shape of one image, `(height, width, channels)`.
        include_top: With the Dense layer (a classifier); `False` returns
            the backbone, whose output is the pooled features, for a head of
            your own.
        batchnorm_momentum: Momentum of the BatchNorm moving statistics
            (Keras's convention: 0.9 is PyTorch's default 0.1).
        batchnorm_epsilon: Epsilon of the BatchNorm layers.
        name: Name of the model (default `"cifar_resnet{depth}"`).

    Returns:
        An uncompiled functional `keras.Model`.

    Example:

    >>> model = cifar_resnet(18, num_classes=10, width=4, input_shape=(8, 8, 3))
    >>> model.output_shape, len(model.layers)
    ((None, 10), 68)
    >>> features = cifar_resnet(18, width=4, input_shape=(8, 8, 3), include_top=False)
    >>> features.output_shape
    (None, 32)
    """
    depth = validation.check_int("depth", depth)
    if depth not in BLOCKS_PER_STAGE:
        raise ValueError(f"`depth` must be one of {sorted(BLOCKS_PER_STAGE)} (BasicBlock ResNets), got {depth}.")
    width = validation.check_int("width", width)
    include_top = validation.check_bool("include_top", include_top)
    if include_top:
        num_classes = validation.check_int("num_classes", num_classes, minimum=2)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels), got {input_shape}.")
    momentum = validation.check_fraction("batchnorm_momentum", batchnorm_momentum)
    epsilon = validation.check_positive_number("batchnorm_epsilon", batchnorm_epsilon)

    def convolution(filters, kernel_size, strides, layer_name):
        return keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same", use_bias=False,
            kernel_initializer=kaiming_normal(), name=layer_name,
        )

    def batchnorm(layer_name):
        return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=layer_name)

    inputs = keras.Input(input_shape, name="images")
    x = convolution(width, 3, 1, "stem_conv")(inputs)
    x = batchnorm("stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    channels = width
    for stage, blocks in enumerate(BLOCKS_PER_STAGE[depth]):
        filters = width * 2**stage
        for block in range(blocks):
            prefix = f"stage{stage + 1}_block{block + 1}"
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            if strides != 1 or channels != filters:
                shortcut = convolution(filters, 1, strides, f"{prefix}_shortcut_conv")(x)
                shortcut = batchnorm(f"{prefix}_shortcut_bn")(shortcut)
            x = convolution(filters, 3, strides, f"{prefix}_conv1")(x)
            x = batchnorm(f"{prefix}_bn1")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu1")(x)
            x = convolution(filters, 3, 1, f"{prefix}_conv2")(x)
            x = batchnorm(f"{prefix}_bn2")(x)
            x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
            x = keras.layers.ReLU(name=f"{prefix}_relu2")(x)
            channels = filters
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if include_top:
        x = keras.layers.Dense(
            num_classes, kernel_initializer=kaiming_normal(), bias_initializer="zeros", name="logits"
        )(x)
    return keras.Model(inputs, x, name=name or f"cifar_resnet{depth}")
