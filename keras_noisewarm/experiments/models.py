"""The architectures of the paper's experiments."""

import keras


def build_mlp(input_dim, num_classes=10, depth=6, width=256, seed=0):
    """The paper's MLP: blocks of Dense (He-normal, zero bias) -> ReLU -> BatchNorm.

    Args:
        input_dim: Number of input features (3072 for flattened CIFAR-10).
        num_classes: Number of output logits.
        depth: Number of Dense layers, the output layer included (>= 2).
        width: Units of each hidden layer.
        seed: Seed of the initial weights: the same seed gives the same
            network, so runs with and without warm-up start alike.

    Returns:
        An uncompiled `keras.Sequential` model that outputs logits.
    """
    if depth < 2:
        raise ValueError(f"`depth` must be at least 2 (one hidden layer), got {depth}.")
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((input_dim,))]
    for _ in range(depth - 1):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    layers.append(keras.layers.Dense(num_classes, kernel_initializer="he_normal"))
    return keras.Sequential(layers, name=f"mlp_{depth}x{width}")
