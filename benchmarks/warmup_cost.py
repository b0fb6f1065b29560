"""The default warm-up's wall time against the training it prepares.

For each setting of the warm-up budget measurement (paper/warmup_budget.py:
the main job's MLP, a small CNN on Fashion-MNIST, a CNN with BatchNorm and a
CIFAR ResNet-18 on CIFAR-10) and each backend, this times the default warm-up
(`keras_noisewarm.warmup(model, num_classes=10, training_examples=...)`,
which the default recipe sizes from the training) and the training itself
(`model.fit` of the setting), and prints their ratio side by side, one
process per backend. Data are random arrays of the settings' shapes: only
time is measured. The target is a ratio of at most 0.10.

    python benchmarks/warmup_cost.py            # every setting and backend
    python benchmarks/warmup_cost.py --quick    # tiny sizes (CI)
    python benchmarks/warmup_cost.py --epochs-times 5 --settings mlp,cifar_cnn_bn

`--epochs-times N` trains each setting N times as many epochs (the default
warm-up grows with it, a tenth of the examples): the warm-up's fixed costs
(its own trace or compilation, the model inspection, the BatchNorm
re-estimation) are paid once, so the ratio falls towards the budget as the
training grows.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def measure(setting_names, quick, epochs_times=1):
    """Times the default warm-up and the fit of each setting, in this process."""
    import keras
    import numpy as np

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    import keras_noisewarm
    from paper import warmup_budget

    # Pay the process's one-time start-up (backend initialisation, the first
    # compilation) on a throwaway model, so that it counts against neither side.
    spare = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    spare.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    spare.fit(np.zeros((8, 4), "float32"), np.zeros(8, "int32"), verbose=0)
    keras_noisewarm.warmup(spare, num_classes=2, steps=1, seed=0, verbose=0)
    rows = []
    for name in setting_names:
        setting = warmup_budget.SETTINGS[name]
        if quick:
            setting = dataclasses.replace(setting, train_size=128, epochs=1)
        setting = dataclasses.replace(setting, epochs=setting.epochs * epochs_times)
        shape = (28, 28, 1) if setting.data.startswith("fashion") else (32, 32, 3)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(setting.train_size,) + shape).astype("float32")
        y = rng.integers(0, 10, size=setting.train_size)
        keras.utils.set_random_seed(0)
        model = warmup_budget.build_model(setting, shape)
        start = time.perf_counter()
        # --quick only checks that the script runs: a few steps, not the default.
        length = dict(steps=20) if quick else dict(training_examples=setting.training_examples)
        history = keras_noisewarm.warmup(model, num_classes=10, seed=0, verbose=0, **length)
        warmup_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model.fit(x, y, batch_size=setting.batch_size, epochs=setting.epochs, verbose=0)
        fit_seconds = time.perf_counter() - start
        rows.append(dict(setting=name, backend=keras.backend.backend(),
                         warmup_steps=history.params.get("stopped_step") or history.params["steps"],
                         warmup_seconds=warmup_seconds, fit_seconds=fit_seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--settings", default="mlp,fashion_cnn,cifar_cnn_bn,resnet18")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--epochs-times", type=int, default=1,
                        help="train each setting this many times as many epochs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = args.settings.split(",")
    if args.quick:
        settings = settings[:1]
    if args.child:
        print(json.dumps(measure(settings, args.quick, args.epochs_times)))
        return
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from _machine import print_machine

    print_machine()
    backends = args.backends.split(",")
    if args.quick:
        backends = [os.environ.get("KERAS_BACKEND", backends[0])]
    rows = []
    for backend in backends:
        command = [sys.executable, __file__, "--child", "--settings", ",".join(settings),
                   "--epochs-times", str(args.epochs_times)]
        if args.quick:
            command.append("--quick")
        environment = dict(os.environ, KERAS_BACKEND=backend,
                           PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
        rows += json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"{'setting':14}{'backend':12}{'warm-up steps':>14}{'warm-up s':>11}{'fit s':>9}")
    for row in rows:
        print(f"{row['setting']:14}{row['backend']:12}{row['warmup_steps']:>14}"
              f"{row['warmup_seconds']:>11.2f}{row['fit_seconds']:>9.2f}")
    for row in rows:
        print(f"ratio (warm-up / training, {row['setting']}, {row['backend']}): "
              f"{row['warmup_seconds'] / row['fit_seconds']:.3f}x")
    print()
    times = f", training {args.epochs_times}x the setting's epochs" if args.epochs_times != 1 else ""
    print(f"warm-up seconds / training seconds (target: at most 0.10{times})")
    print(f"{'setting':14}" + "".join(f"{backend:>12}" for backend in backends))
    for name in settings:
        ratios = {row["backend"]: row["warmup_seconds"] / row["fit_seconds"]
                  for row in rows if row["setting"] == name}
        print(f"{name:14}" + "".join(f"{ratios[backend]:>12.3f}" for backend in backends))


if __name__ == "__main__":
    main()
