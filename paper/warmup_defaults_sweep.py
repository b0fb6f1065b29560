"""How the warm-up's learning rate and length were chosen.

Six-layer MLP (Dense 256 -> ReLU -> BatchNorm, He-normal) on 4,000 CIFAR-10
training images, trained 30 epochs with Adam 1e-4 (batch 128) after each
warm-up variant, evaluated on 5,000 *other training images* (indices
10,000-15,000) so that the choice never looks at the test split. Prints one
JSON line per (seed, variant): noise confidence after the warm-up, validation
accuracy, 15-bin ECE and NLL.

    KERAS_BACKEND=jax python -m paper.warmup_defaults_sweep --seeds 0,1

The committed output is docs/warmup_defaults_sweep.jsonl (see README).
"""

import argparse
import json
import pathlib
import time

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import datasets
from paper import data
from paper.models import build_mlp

VARIANTS = {
    "none": None,
    "adam1e-4_b128_2500": dict(learning_rate=1e-4, batch_size=128, steps=2500),
    "adam1e-4_b32_10000": dict(learning_rate=1e-4, batch_size=32, steps=10000),
    "adam3e-4_b128_2500": dict(learning_rate=3e-4, batch_size=128, steps=2500),
    "adam1e-3_b128_2500": dict(learning_rate=1e-3, batch_size=128, steps=2500),
}


def load_split(data_dir):
    (x, y), _ = datasets.load_cifar10(pathlib.Path(data_dir or data.local_data_dir()) / "cifar10-subset")
    x = x.astype("float32") / 255.0
    mean, std = x[:4000].mean(axis=(0, 1, 2)), x[:4000].std(axis=(0, 1, 2))
    x = ((x - mean) / std).reshape(len(x), -1)
    return (x[:4000], y[:4000]), (x[10000:15000], y[10000:15000])


def ece(probabilities, labels, num_bins=15):
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    return sum(
        (bins == b).mean() * abs(correct[bins == b].mean() - confidence[bins == b].mean())
        for b in range(num_bins)
        if (bins == b).any()
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    (x_train, y_train), (x_val, y_val) = load_split(args.data_dir)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in args.variants.split(","):
            model = build_mlp(3072, 10, depth=6, width=256, seed=seed)
            start = time.time()
            confidence = None
            if VARIANTS[name]:
                keras_noisewarm.warmup(
                    model, num_classes=10, seed=seed + 100, verbose=0, **VARIANTS[name]
                )
                confidence = keras_noisewarm.noise_confidence(model)
            warmup_seconds = time.time() - start
            model.compile(
                keras.optimizers.Adam(1e-4),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            model.fit(x_train, y_train, batch_size=128, epochs=30, verbose=0)
            logits = model.predict(x_val, verbose=0, batch_size=1000).astype("float64")
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            row = dict(
                seed=seed,
                variant=name,
                warmup_s=round(warmup_seconds, 1),
                noise_conf=None if confidence is None else round(confidence.mean_confidence, 3),
                noise_maxfreq=None if confidence is None else round(confidence.max_class_frequency, 3),
                val_acc=round(float((p.argmax(axis=1) == y_val).mean()), 4),
                val_ece=round(ece(p, y_val), 4),
                val_nll=round(float(-np.log(p[np.arange(len(y_val)), y_val] + 1e-12).mean()), 4),
                total_s=round(time.time() - start, 1),
            )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
