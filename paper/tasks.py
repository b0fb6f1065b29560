"""Warm-up beyond image classifiers: segmentation, a character LM, regression.

Runs the full comparisons of the three task examples (`examples/
segmentation.py`, `examples/char_language_model.py`, `examples/
regression_variance.py`, their functions imported from the files) with the
settings each chose on held-out training data, and writes the measured
tables and calibration figures:

    python -m paper reproduce tasks --output docs --cache outputs/reproduce-runs

Every finished run is kept in the cache (`<cache>/tasks/`), so an
interrupted reproduction resumes and a rerun trains nothing.
"""

import dataclasses
import hashlib
import importlib.util
import json
import pathlib

import numpy as np

from keras_noisewarm import compare
from keras_noisewarm import metrics
from keras_noisewarm import paired_runs
from keras_noisewarm import plot

EXAMPLES_FOLDER = pathlib.Path(__file__).resolve().parent.parent / "examples"
# name: (file, title, what the paper claims for it, or None)
EXAMPLES = {
    "segmentation": (
        "segmentation.py",
        "Segmentation: synthetic shapes, per-pixel softmax",
        "warm-up calibrates segmentation networks",
    ),
    "char_language_model": (
        "char_language_model.py",
        "Character-level language model: Python's help pages",
        "warm-up calibrates language generation",
    ),
    "regression_variance": (
        "regression_variance.py",
        "Regression with a variance head: scikit-learn's diabetes data",
        None,
    ),
}
# The metric each verdict is read from: the example's calibration error.
CALIBRATION_METRIC = {"segmentation": "ece", "char_language_model": "ece",
                      "regression_variance": "ence"}
VERSION = 1  # bump when a run's protocol changes, so old runs are not reused
FIGURE = "tasks_calibration.png"
_LOADED = {}


def load_example(name):
    """The example module `name`, imported from its file once."""
    if name not in _LOADED:
        path = EXAMPLES_FOLDER / EXAMPLES[name][0]
        spec = importlib.util.spec_from_file_location(f"paper_example_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADED[name] = module
    return _LOADED[name]


def settings_of(name, context):
    """The example's full settings (its fast ones with `--quick`), seeds from the command line."""
    example = load_example(name)
    settings = example.FAST if context.quick else example.SETTINGS
    return dataclasses.replace(settings, seeds=context.seeds_or(settings.seeds))


def comparison(name, context):
    """Every seed's two runs of example `name`, trained or read from the cache.

    Returns:
        `(runs, arrays)`: `{arm: [numbers per seed]}` and `{arm: [what the
        figure needs of each run]}` (see `figure_arrays`).
    """
    import keras

    example = load_example(name)
    settings = settings_of(name, context)
    store_settings = {"example": name, "version": VERSION, "backend": keras.backend.backend(),
                      "settings": {key: value for key, value in dataclasses.asdict(settings).items()
                                   if key != "seeds"}}
    store_settings = json.loads(json.dumps(store_settings))
    digest = hashlib.sha1(json.dumps(store_settings, sort_keys=True).encode()).hexdigest()[:10]
    folder = pathlib.Path(context.cache) / "tasks" / f"{name}-v{VERSION}-{digest}"
    store = compare.RunStore(folder, store_settings)
    data = None
    runs = {arm: [] for arm in compare.ARMS}
    arrays = {arm: [] for arm in compare.ARMS}
    for seed in settings.seeds:
        for arm in compare.ARMS:
            if not store.has(seed, arm):
                if data is None:
                    data = example.load_data(settings)
                numbers, predicted = example.run(settings, data, seed, arm)
                store.save(seed, arm, numbers, figure_arrays(name, predicted, data["test"][1]))
                if context.verbose:
                    print(f"{name} seed {seed} {arm}: {json.dumps(numbers)}", flush=True)
            runs[arm].append(store.load(seed, arm))
            arrays[arm].append(store.load_arrays(seed, arm))
    return runs, arrays


def reliability_metric(name):
    """The ECE whose state the reliability diagram of a classification example draws."""
    example = load_example(name)
    if name == "segmentation":
        return metrics.ExpectedCalibrationError(ignore_label=example.IGNORE_LABEL)
    return metrics.ExpectedCalibrationError(from_logits=True, ignore_label=example.PADDING_ID)


def figure_arrays(name, predicted, truth):
    """What the figure needs of one run, small enough to keep.

    A classification example's reliability histogram (the ECE's state:
    states of several runs add up to the state of their pooled
    predictions), or a regression's predictions and targets.
    """
    if name == "regression_variance":
        return {"outputs": np.asarray(predicted), "truth": np.asarray(truth)}
    metric = reliability_metric(name)
    metric.update_state(truth, predicted)
    return {variable.name: np.asarray(variable.value) for variable in
            (metric.bin_counts, metric.bin_confidence_sums, metric.bin_correct_sums)}


def reproduce(context):
    """Runs (or reads) the three comparisons; returns the markdown section."""
    lines = [
        "## Tasks beyond image classification: segmentation, language model, regression",
        "",
        f"Command: `{context.command}`",
        "",
        "Each example (in `examples/`, runnable on its own) trains the same network from "
        "the same initial weights with and without a noise warm-up, for paired seeds, and "
        "measures it on held-out test data. The settings (training epochs, warm-up length "
        "and learning rate) are set by hand: each example's `--select` (median validation "
        "NLL over selection seeds 100+, on data held out from its *training* split) was "
        "started but cut short, so they are not its choice; they were not chosen on the "
        "test split either, which only these runs read. "
        "Verdict per metric: *helped*/*hurt* when most seeds moved that way with a paired "
        "two-sided Wilcoxon p < 0.1 (with 5 seeds that takes all five: the smallest "
        "possible p is 0.0625), else *no clear difference*.",
        "",
    ]
    figure_inputs = {}
    for name, (filename, title, claim) in EXAMPLES.items():
        example = load_example(name)
        settings = settings_of(name, context)
        runs, arrays = comparison(name, context)
        figure_inputs[name] = arrays
        rows = compare.comparison_rows(runs, metrics=example.METRICS)
        lines += [
            f"### {title}",
            "",
            f"`python examples/{filename}` ({example.__doc__.strip().splitlines()[0]}). "
            f"Settings: `{_describe(settings)}`; seeds {', '.join(map(str, settings.seeds))}.",
            "",
            compare.markdown_table(rows),
            "",
        ]
        lines += [f"- {row['title']}: **{paired_runs.verdict(row)}** ({row['wins']}/{row['seeds']} "
                  f"seeds better, p = {row['p_value']:.3g})" for row in rows]
        lines += ["", _extra_line(name, runs), ""]
        calibration = next(row for row in rows if row["metric"] == CALIBRATION_METRIC[name])
        outcome = paired_runs.verdict(calibration)
        summary = (f"{calibration['title']} {calibration['baseline'].median:.4f} -> "
                   f"{calibration['warmup'].median:.4f} (median; {calibration['wins']}/"
                   f"{calibration['seeds']} seeds better, p = {calibration['p_value']:.3g})")
        if claim is not None:
            word = "reproduced" if outcome == "helped" else "not reproduced"
            lines.append(f"Paper's claim ({claim}): **{word}** here: {summary}.")
        else:
            lines.append(f"Not a claim of the paper (it has no regression experiment): "
                         f"warm-up **{outcome}** for the {summary}.")
        lines.append("")
    _draw(context, figure_inputs)
    lines += [
        context.figure_link(FIGURE, "calibration of the three tasks, both arms, all seeds pooled"),
        "",
        "Figure: top, per-pixel and next-character reliability diagrams (all seeds' test "
        "predictions pooled, ignore label and padding left out); bottom, the regression's "
        "quantile calibration (observed share of targets below each predicted quantile) and "
        "RMSE against predicted RMV per equal-mass bin of predicted standard deviation.",
        "",
    ]
    return "\n".join(lines)


def _describe(settings):
    return ", ".join(f"{key}={value}" for key, value in dataclasses.asdict(settings).items()
                     if key != "seeds")


def _extra_line(name, runs):
    if name == "regression_variance":
        coverage = {arm: np.median([run["coverage"] for run in runs[arm]]) for arm in runs}
        return (f"Coverage of the central 90% interval (median over seeds): no warm-up "
                f"{coverage['baseline']:.3f}, warm-up {coverage['warmup']:.3f}.")
    noise = {arm: np.median([run["noise_confidence"] for run in runs[arm]]) for arm in runs}
    return (f"Mean confidence on noise inputs before the training on data (median over "
            f"seeds): no warm-up {noise['baseline']:.3f}, warm-up {noise['warmup']:.3f}.")


def _draw(context, figure_inputs):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 4, figsize=(20, 10), layout="constrained")
    for column, name in enumerate(("segmentation", "char_language_model")):
        for offset, arm in enumerate(compare.ARMS):
            metric = reliability_metric(name)
            for variable in (metric.bin_counts, metric.bin_confidence_sums, metric.bin_correct_sums):
                variable.assign(np.sum([run[variable.name] for run in figure_inputs[name][arm]],
                                       axis=0))
            plot.reliability_diagram(
                metric=metric, ax=axes[0, 2 * column + offset], show_counts=False,
                title=f"{EXAMPLES[name][1].split(':')[0]}, {compare.ARM_TITLES[arm]}",
            )
    example = load_example("regression_variance")
    for offset, arm in enumerate(compare.ARMS):
        runs = figure_inputs["regression_variance"][arm]
        # All seeds pooled: the same test patients once per seed.
        y_pred = np.concatenate([run["outputs"] for run in runs]).astype("float64")
        y_pred[:, 1] = np.maximum(y_pred[:, 1], example.MIN_VARIANCE)
        y_true = np.concatenate([run["truth"] for run in runs]).astype("float64")
        quantile = metrics.QuantileCalibrationError()
        quantile.update_state(y_true, y_pred)
        variance = metrics.ExpectedNormalizedCalibrationError(num_bins=5)
        variance.update_state(y_true, y_pred)
        title = f"Regression, {compare.ARM_TITLES[arm]}"
        plot.quantile_reliability_diagram(metric=quantile, ax=axes[1, offset], title=title)
        plot.variance_reliability_diagram(metric=variance, ax=axes[1, 2 + offset],
                                          title=f"{title} (ENCE bins)")
    plot.save_figure(figure, context.figure_path(FIGURE))
