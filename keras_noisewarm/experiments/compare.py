"""The main job: the same networks trained with and without noise warm-up.

For every seed, one network is built from that seed and trained twice from
the same initial weights: once directly ("baseline"), once after the noise
warm-up ("warmup"). Both are then measured on held-out and on
out-of-distribution images. Each finished run is written to
`<output>/runs/seed<k>_<arm>.json` as soon as it ends, so an interrupted
comparison resumes where it stopped.
"""

import dataclasses
import json
import pathlib
import time

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import metrics
from keras_noisewarm.experiments import models
from keras_noisewarm.ood import metrics as ood_metrics
from keras_noisewarm.ood import scores as ood_scores

ARMS = ("baseline", "warmup")
ARM_TITLES = {"baseline": "no warm-up", "warmup": "noise warm-up"}
# (name, title, lower is better)
METRICS = (
    ("accuracy", "accuracy", False),
    ("ece", "ECE (15 bins)", True),
    ("mce", "MCE (15 bins)", True),
    ("nll", "NLL", True),
    ("brier", "Brier score", True),
    ("ood_confidence", "mean OOD confidence", True),
    ("ood_auroc", "OOD AUROC (max softmax)", False),
)
NUM_BINS = 15


@dataclasses.dataclass
class CompareConfig:
    """Everything that defines a comparison; saved with every run."""

    dataset: str = "cifar10"
    ood: str = "mnist"
    train_size: int = 4000
    test_size: int = 10000
    depth: int = 6
    width: int = 256
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-4
    warmup_examples: int = 320_000
    warmup_learning_rate: float = 1e-4
    seeds: tuple = tuple(range(10))

    def run_key(self):
        """The settings a finished run must share to be reused."""
        key = dataclasses.asdict(self)
        key.pop("seeds")
        return key


def run_comparison(task, config, output_dir, verbose=1):
    """Runs (or resumes) every seed and arm of a comparison.

    Args:
        task: A `keras_noisewarm.experiments.data.Task`.
        config: A `CompareConfig`.
        output_dir: Folder for the per-run JSON files and figures.
        verbose: 1 for a progress bar over runs, 0 for silence.

    Returns:
        A dict `{arm: [result of each seed]}` in the order of `config.seeds`.
    """
    runs_dir = pathlib.Path(output_dir) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [(seed, arm) for seed in config.seeds for arm in ARMS]
    progress = keras.utils.Progbar(len(todo), unit_name="run") if verbose else None
    results = {arm: [] for arm in ARMS}
    for index, (seed, arm) in enumerate(todo):
        path = runs_dir / f"seed{seed}_{arm}.json"
        result = _load_finished(path, config)
        if result is None:
            result = run_one(task, config, seed, arm, figure_dir=output_dir)
            path.write_text(json.dumps(result, indent=1))
        results[arm].append(result)
        if progress is not None:
            progress.update(index + 1, values=[("ece_" + arm, result["ece"])])
    return results


def run_one(task, config, seed, arm, figure_dir=None):
    """Builds the seed's network, trains it in one arm and measures it."""
    start = time.time()
    model = models.build_mlp(
        task.x_train.shape[1], task.num_classes, config.depth, config.width, seed
    )
    result = {"seed": seed, "arm": arm, "config": config.run_key(),
              "backend": keras.backend.backend()}
    if arm == "warmup":
        result["noise_confidence_before"] = keras_noisewarm.noise_confidence(
            model
        ).mean_confidence
        keras_noisewarm.warmup(
            model,
            num_classes=task.num_classes,
            num_examples=config.warmup_examples,
            learning_rate=config.warmup_learning_rate,
            seed=seed + 10_000,
            verbose=0,
        )
        result["noise_confidence_after"] = keras_noisewarm.noise_confidence(
            model
        ).mean_confidence
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # The data order is seeded too, so that both arms see the same batches.
    keras.utils.set_random_seed(seed + 20_000)
    model.fit(task.x_train, task.y_train, batch_size=config.batch_size,
              epochs=config.epochs, verbose=0, shuffle=True)
    result.update(evaluate(model, task))
    result["seconds"] = round(time.time() - start, 1)
    if figure_dir is not None and seed == config.seeds[0]:
        _save_reliability_diagram(model, task, arm, seed, figure_dir)
    return result


def evaluate(model, task):
    """Accuracy, calibration and OOD metrics of a trained logit model."""
    test_logits = model.predict(task.x_test, batch_size=1000, verbose=0)
    ood_logits = model.predict(task.x_ood, batch_size=1000, verbose=0)
    values = {}
    for name, metric in [
        ("ece", metrics.ExpectedCalibrationError(NUM_BINS, from_logits=True)),
        ("mce", metrics.MaximumCalibrationError(NUM_BINS, from_logits=True)),
        ("nll", metrics.NegativeLogLikelihood(from_logits=True)),
        ("brier", metrics.BrierScore(from_logits=True)),
    ]:
        metric.update_state(task.y_test, test_logits)
        values[name] = float(metric.result())
    test_confidence = keras.ops.convert_to_numpy(
        ood_scores.max_softmax_probability(test_logits)
    )
    ood_confidence = keras.ops.convert_to_numpy(
        ood_scores.max_softmax_probability(ood_logits)
    )
    values["accuracy"] = float(np.mean(np.argmax(test_logits, axis=1) == task.y_test))
    values["mean_confidence"] = float(np.mean(test_confidence))
    values["ood_confidence"] = float(np.mean(ood_confidence))
    values["ood_auroc"] = ood_metrics.auroc(test_confidence, ood_confidence)
    return values


def _load_finished(path, config):
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if result.get("config") != config.run_key():
        raise ValueError(
            f"{path} was produced with other settings ({result.get('config')}); "
            "use another --output folder or delete it to start over."
        )
    return result


def _save_reliability_diagram(model, task, arm, seed, figure_dir):
    import matplotlib.pyplot as plt

    logits = model.predict(task.x_test, batch_size=1000, verbose=0)
    figure = keras_noisewarm.plot.reliability_diagram(
        task.y_test, logits, num_bins=NUM_BINS, from_logits=True,
        title=f"{ARM_TITLES[arm]} (seed {seed})",
    )
    figure.savefig(pathlib.Path(figure_dir) / f"reliability_{arm}_seed{seed}.png", dpi=100)
    plt.close(figure)
