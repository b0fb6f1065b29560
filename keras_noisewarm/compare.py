"""Does the warm-up help *my* model? A paired A/B test on the user's own model.

`compare_warmup` trains the user's model once per seed in each *arm*: directly
(`"baseline"`) and after the noise warm-up (`"warmup"`). Both arms of a seed
start from the same initial weights and see the training batches in the same
order, so they differ by the warm-up alone and can be compared pair by pair:
for every metric, medians and quartiles over seeds, how many seeds the
warm-up improved, and a paired two-sided Wilcoxon signed-rank test (the
paper's statistics).

With a `directory`, every finished run is saved at once (a JSON file of its
numbers and an `.npz` of its outputs), so an interrupted comparison resumes
where it stopped; a directory holding runs of other settings is refused.
"""

import dataclasses
import hashlib
import json
import pathlib
import time
import warnings

import keras
import numpy as np

from keras_noisewarm import diagnostics
from keras_noisewarm import metrics as metrics_lib
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import statistics
from keras_noisewarm import validation
from keras_noisewarm.noise import stream as stream_lib
from keras_noisewarm.noise_warmup import NoiseWarmup
from keras_noisewarm.ood import metrics as ood_metrics
from keras_noisewarm.ood import scores as ood_scores

ARMS = ("baseline", "warmup")
ARM_TITLES = {"baseline": "no warm-up", "warmup": "noise warm-up"}
# (name, title, lower is better) of the numbers every run reports.
METRICS = (
    ("accuracy", "accuracy", False),
    ("ece", "ECE", True),
    ("mce", "MCE", True),
    ("nll", "NLL", True),
    ("brier", "Brier score", True),
    ("ood_confidence", "mean OOD confidence", True),
    ("ood_auroc", "OOD AUROC", False),
)
# Offsets that give the warm-up noise and the data order seeds of their own.
WARMUP_SEED_OFFSET = 10_000
DATA_ORDER_SEED_OFFSET = 20_000
DEFAULT_NUM_BINS = 15


def compare_warmup(
    build_model,
    train_data,
    validation_data,
    ood_data=None,
    seeds=5,
    warmup=None,
    fit_kwargs=None,
    directory=None,
    warmup_directory=None,
    arms=ARMS,
    track_epochs=False,
    num_bins=DEFAULT_NUM_BINS,
    ood_score="msp",
    key=None,
    verbose=1,
    keep_models=False,
):
    """Trains the user's model with and without warm-up over paired seeds.

    Args:
        build_model: A callable with no arguments that returns a new,
            compiled classifier (its optimizer, loss and metrics are the
            training you want to test). It is called after
            `keras.utils.set_random_seed(seed)`; the warm-up arm starts from
            exactly the baseline's initial weights.
        train_data: `(x, y)` (or `(x, y, sample_weight)`) arrays, or anything
            `model.fit` takes as `x` (a `tf.data.Dataset`...).
        validation_data: Held-out `(x, y)` arrays the model is measured on
            (never the data you tune on).
        ood_data: Optional out-of-distribution inputs, for the mean OOD
            confidence and the OOD AUROC.
        seeds: The number of seeds (`5` means 0..4) or a list of seeds.
        warmup: The warm-up to test: a `NoiseWarmup`, a dict of its
            arguments, or `None` for the default `NoiseWarmup()`. Its seed,
            if unset, is `seed + 10000` for each seed.
        fit_kwargs: Arguments of `model.fit` (`epochs`, `batch_size`,
            `callbacks`, ...), the same for both arms.
        directory: Folder to keep finished runs in; a rerun resumes. `None`
            keeps them in memory only.
        warmup_directory: Folder to keep warmed-up weights in, so that
            comparisons of the same network and warm-up (on other data, say)
            warm each seed up once; default: `directory`.
        arms: The arms to run (both by default).
        track_epochs: Also measure the validation set before training and
            after every epoch (under `"epochs"` in each run).
        num_bins: Bins of the ECE and MCE.
        ood_score: OOD score of the AUROC (`keras_noisewarm.ood.score_names()`).
        key: Any JSON-able description of what `build_model` and the data
            are, stored with the runs: a directory made with another key is
            refused, so runs of different models never mix.
        verbose: 1 for a progress bar over the runs, 0 for silence.
        keep_models: Also keep every trained network, for evaluations the
            comparison does not make (`WarmupComparison.load_model`): with a
            `directory`, its weights are saved beside the run
            (`seed<k>_<arm>.weights.h5`), and a stored run without them is
            trained again; without one, the models stay in memory.

    Returns:
        A `WarmupComparison`.

    Example:

    ```python
    def build_model():
        model = keras.Sequential([...])
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    comparison = keras_noisewarm.compare_warmup(
        build_model, (x_train, y_train), (x_val, y_val), ood_data=x_ood,
        seeds=5, fit_kwargs={"epochs": 20, "batch_size": 128},
        directory="warmup_ab",
    )
    print(comparison.table())
    comparison.save_report("warmup_ab")
    ```
    """
    if not callable(build_model):
        raise ValueError(f"`build_model` must be a callable returning a compiled model, got {build_model!r}.")
    seeds = _seeds(seeds)
    warmup = _warmup(warmup)
    fit_kwargs = dict(fit_kwargs or {})
    for name in ("x", "y", "validation_split", "verbose"):
        if name in fit_kwargs:
            raise ValueError(f"`fit_kwargs` may not set {name!r}: the comparison sets it.")
    arms = tuple(validation.check_choice("arm", arm, ARMS) for arm in arms)
    if not arms:
        raise ValueError("`arms` is empty.")
    x_validation, y_validation = _labelled(validation_data, "validation_data")
    validation.check_int("num_bins", num_bins, minimum=1)
    scorer = ood_scores.get(ood_score)
    if not isinstance(scorer, ood_scores.OutputScore):
        raise ValueError("`ood_score` must be a score of the model's outputs (not ODIN).")
    validation.check_choice("verbose", verbose, (0, 1))
    keep_models = validation.check_bool("keep_models", keep_models)
    settings = _settings(key, warmup, fit_kwargs, train_data, x_validation, ood_data,
                         num_bins, scorer, track_epochs)
    store = RunStore(directory, settings) if directory is not None else None
    warm_store = None
    if warmup_directory is not None or store is not None:
        warm_store = WarmupStore(warmup_directory or directory, warmup)
    protocol = RunProtocol(
        build_model, train_data, x_validation, y_validation, ood_data, warmup,
        fit_kwargs, track_epochs, num_bins, scorer, warm_store,
    )
    jobs = [(seed, arm) for seed in seeds for arm in arms]
    runs = {}
    todo = [job for job in jobs if store is None or not store.has(*job)
            or (keep_models and not store.has_model(*job))]
    progress = keras.utils.Progbar(len(todo), unit_name="run") if todo and verbose else None
    if todo and verbose and store is not None and len(todo) < len(jobs):
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already done; training {len(todo)}.")
    outputs = {}
    models = {}
    for index, (seed, arm) in enumerate(todo):
        result, arrays, model = protocol.run(seed, arm)
        if store is not None:
            store.save(seed, arm, result, arrays, model if keep_models else None)
        elif keep_models:
            models[seed, arm] = model
        runs[seed, arm] = result
        outputs[seed, arm] = arrays
        if progress is not None:
            progress.update(index + 1, values=[("ece", result["ece"])])
    for job in jobs:
        if job not in runs:
            runs[job] = store.load(*job)
    return WarmupComparison(
        seeds=seeds,
        arms=arms,
        runs={arm: [runs[seed, arm] for seed in seeds] for arm in arms},
        store=store,
        outputs=outputs,
        num_bins=num_bins,
        build_model=build_model,
        models=models,
    )


def measure(outputs, labels, ood_outputs=None, num_bins=DEFAULT_NUM_BINS, ood_score="msp",
            from_logits=None):
    """Accuracy, calibration and (given OOD outputs) OOD numbers of a classifier.

    Args:
        outputs: The model's outputs (logits or probabilities) on labelled
            held-out inputs, `(N, K)`.
        labels: Their integer labels `(N,)`.
        ood_outputs: Outputs on out-of-distribution inputs, or `None`.
        num_bins: Bins of the ECE and MCE.
        ood_score: The OOD score (a registered name or an output scorer).
        from_logits: Whether the outputs are logits; `None` detects it.

    Returns:
        A dict with `accuracy`, `ece`, `mce`, `nll`, `brier`,
        `mean_confidence` and, with `ood_outputs`, `ood_confidence`,
        `ood_auroc`, `ood_aupr_in`, `ood_aupr_out` and `ood_fpr95`
        (in-distribution positive).

    Example:

    >>> import numpy as np
    >>> values = measure(np.array([[2.0, 0.0], [0.0, 2.0]]), np.array([0, 0]))
    >>> values["accuracy"], round(values["mean_confidence"], 3)
    (0.5, 0.881)
    """
    # In their own dtype: rows of bfloat16 probabilities sum to one only
    # within bfloat16's tolerance, which the metrics apply to that dtype.
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    from_logits = outputs_lib.resolve_from_logits(outputs, from_logits, what="the outputs")
    values = {}
    for name, metric in (
        ("ece", metrics_lib.ExpectedCalibrationError(num_bins, from_logits=from_logits)),
        ("mce", metrics_lib.MaximumCalibrationError(num_bins, from_logits=from_logits)),
        ("nll", metrics_lib.NegativeLogLikelihood(from_logits=from_logits)),
        ("brier", metrics_lib.BrierScore(from_logits=from_logits)),
    ):
        metric.update_state(labels, outputs)
        values[name] = float(metric.result())
    probabilities = outputs_lib.probabilities_of(outputs, from_logits)
    confidences = probabilities.max(axis=-1)
    values["accuracy"] = float(np.mean(probabilities.argmax(axis=-1) == np.asarray(labels).reshape(-1)))
    values["mean_confidence"] = float(np.mean(confidences))
    if ood_outputs is not None:
        scorer = ood_scores.get(ood_score)
        ood_outputs = np.asarray(keras.ops.convert_to_numpy(ood_outputs))
        id_scores = _scores(scorer, outputs, from_logits)
        ood_scores_ = _scores(scorer, ood_outputs, from_logits)
        values["ood_confidence"] = float(
            np.mean(outputs_lib.probabilities_of(ood_outputs, from_logits).max(axis=-1))
        )
        values["ood_auroc"] = ood_metrics.auroc(id_scores, ood_scores_)
        values["ood_aupr_in"] = ood_metrics.aupr_in(id_scores, ood_scores_)
        values["ood_aupr_out"] = ood_metrics.aupr_out(id_scores, ood_scores_)
        values["ood_fpr95"] = ood_metrics.fpr_at_95_tpr(id_scores, ood_scores_)
    return values


def comparison_rows(runs, metric_names=None, metrics=METRICS):
    """One row per metric: summaries of both arms, effect, wins and p-value.

    Args:
        runs: `{"baseline": [per-seed result dicts], "warmup": [...]}`, the
            seeds in the same order in both arms.
        metric_names: Names of `metrics` to include (default: every metric
            the runs report).
        metrics: `(name, title, lower is better)` triples.

    Returns:
        A list of dicts with keys `metric`, `title`, `baseline`, `warmup`
        (`statistics.Summary`), `ratio` (median warm-up / median baseline),
        `difference` (median of the paired differences, warm-up minus
        baseline), `wins` (seeds where warm-up is better), `seeds`,
        `p_value` (paired two-sided Wilcoxon) and `lower_is_better`.

    Example:

    >>> runs = {"baseline": [{"ece": 0.3}, {"ece": 0.2}],
    ...         "warmup": [{"ece": 0.2}, {"ece": 0.1}]}
    >>> row, = comparison_rows(runs)
    >>> row["wins"], round(row["difference"], 3)
    (2, -0.1)
    """
    if len(runs["baseline"]) != len(runs["warmup"]):
        raise ValueError("Both arms need one run per seed, in the same order.")
    rows = []
    for name, title, lower_is_better in metrics:
        if metric_names is not None and name not in metric_names:
            continue
        if not all(name in run for run in runs["baseline"] + runs["warmup"]):
            continue
        baseline = np.array([run[name] for run in runs["baseline"]], dtype=np.float64)
        warmup = np.array([run[name] for run in runs["warmup"]], dtype=np.float64)
        baseline_summary = statistics.summarize(baseline)
        warmup_summary = statistics.summarize(warmup)
        rows.append(
            {
                "metric": name,
                "title": title,
                "baseline": baseline_summary,
                "warmup": warmup_summary,
                "ratio": warmup_summary.median / baseline_summary.median
                if baseline_summary.median
                else float("nan"),
                "difference": float(np.median(warmup - baseline)),
                "wins": statistics.wins(baseline, warmup, lower_is_better),
                "seeds": len(baseline),
                "p_value": statistics.paired_wilcoxon(baseline, warmup),
                "lower_is_better": lower_is_better,
            }
        )
    return rows


def format_table(rows):
    """A plain-text table of `comparison_rows` for the terminal."""
    header = (
        f"{'metric':22}{'no warm-up':>26}{'noise warm-up':>26}"
        f"{'ratio':>8}{'wins':>7}{'Wilcoxon p':>12}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['title']:22}{str(row['baseline']):>26}{str(row['warmup']):>26}"
            f"{row['ratio']:8.3f}{row['wins']:>4}/{row['seeds']:<2}{row['p_value']:12.4f}"
        )
    lines.append("median [25th, 75th percentile] over seeds; wins: seeds where warm-up is better")
    return "\n".join(lines)


def markdown_table(rows):
    """The rows of `comparison_rows` as a markdown table."""
    lines = [
        "| metric | no warm-up | noise warm-up | ratio | warm-up better | Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['title']} | {row['baseline']} | {row['warmup']} | "
            f"{row['ratio']:.3f} | {row['wins']}/{row['seeds']} | {row['p_value']:.4g} |"
        )
    lines += [
        "",
        "Values: median [25th, 75th percentile] over seeds. p: paired two-sided "
        "Wilcoxon signed-rank test over seeds (each seed's two networks start "
        "from the same weights).",
    ]
    return "\n".join(lines)


@dataclasses.dataclass
class WarmupComparison:
    """The result of `compare_warmup`.

    Attributes:
        seeds: The seeds, in order.
        arms: The arms that were run.
        runs: `{arm: [result dict of each seed]}`: the numbers of `measure`,
            the noise confidence before and after the warm-up, the training
            loss per epoch, timings (`warmup_seconds`, `fit_seconds`) and,
            with `track_epochs`, the validation numbers per epoch (`"epochs"`).
        store: The `RunStore` of the runs, or `None`.
    """

    seeds: tuple
    arms: tuple
    runs: dict
    store: object = None
    outputs: dict = dataclasses.field(default_factory=dict, repr=False)
    num_bins: int = DEFAULT_NUM_BINS
    build_model: object = dataclasses.field(default=None, repr=False)
    models: dict = dataclasses.field(default_factory=dict, repr=False)

    def rows(self, metric_names=None):
        """`comparison_rows` of the two arms."""
        if set(self.arms) != set(ARMS):
            raise ValueError(f"Statistics need both arms; this comparison ran {self.arms}.")
        return comparison_rows(self.runs, metric_names)

    def table(self):
        """The plain-text table of every metric."""
        return format_table(self.rows())

    def arrays(self, seed, arm):
        """A run's `validation_outputs`, `validation_labels` and `ood_outputs`."""
        if (seed, arm) in self.outputs:
            return self.outputs[seed, arm]
        if self.store is None:
            raise ValueError("The outputs of runs trained earlier are kept only with a directory.")
        return self.store.load_arrays(seed, arm)

    def load_model(self, seed, arm):
        """The trained network of a run (made with `keep_models=True`).

        From a directory, `build_model` builds it again (after
        `keras.utils.set_random_seed(seed)`) and its saved weights are loaded.
        """
        if (seed, arm) in self.models:
            return self.models[seed, arm]
        if self.store is None or not self.store.has_model(seed, arm):
            raise ValueError(
                f"No trained network of seed {seed}, arm {arm!r} was kept: run "
                "compare_warmup with keep_models=True."
            )
        keras.utils.set_random_seed(seed)
        model = self.build_model()
        with warnings.catch_warnings():
            # The file holds the optimizer's state too, which a network that
            # only predicts does not need (nor has built).
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(self.store.model_path(seed, arm))
        return model

    def reliability_diagrams(self, folder, seed=None, prefix="reliability"):
        """Saves one reliability diagram per arm of `seed` (default: the first).

        Returns:
            `{arm: file name}`.
        """
        from keras_noisewarm import plot

        seed = self.seeds[0] if seed is None else seed
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = {}
        for arm in self.arms:
            arrays = self.arrays(seed, arm)
            figure = plot.reliability_diagram(
                arrays["validation_labels"], arrays["validation_outputs"],
                num_bins=self.num_bins, title=f"{ARM_TITLES[arm]} (seed {seed})",
            )
            names[arm] = f"{prefix}_{arm}_seed{seed}.png"
            plot.save_figure(figure, folder / names[arm])
        return names

    def markdown(self, title="Noise warm-up vs no warm-up", figures=None, lines=()):
        """A markdown report: `lines` of context, the table and the figures."""
        report = [f"# {title}", "", *lines, "", markdown_table(self.rows()), ""]
        noise = _noise_confidence_line(self.runs)
        if noise:
            report += [noise, ""]
        report.append(_time_line(self.runs))
        if figures:
            report += ["", " ".join(f"![{arm}]({name})" for arm, name in figures.items())]
        return "\n".join(report) + "\n"

    def save_report(self, folder, title="Noise warm-up vs no warm-up", lines=()):
        """Writes `report.md` and reliability diagrams to `folder`; returns the report's path."""
        folder = pathlib.Path(folder)
        figures = self.reliability_diagrams(folder)
        path = folder / "report.md"
        path.write_text(self.markdown(title, figures, lines))
        return path


class RunStore:
    """Finished runs on disk: `<directory>/seed<k>_<arm>.json|.npz`.

    The directory's `settings.json` records what the runs were made with;
    a store opened with other settings refuses to mix its runs in.
    """

    def __init__(self, directory, settings):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        path = self.directory / "settings.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored != settings:
                changed = sorted(
                    name for name in set(stored) | set(settings) if stored.get(name) != settings.get(name)
                )
                raise ValueError(
                    f"{self.directory} holds runs made with other settings (they "
                    f"differ in {changed}). Use another directory, or delete this "
                    "one to start over."
                )
        else:
            path.write_text(json.dumps(settings, indent=1, sort_keys=True))

    def _path(self, seed, arm, suffix):
        return self.directory / f"seed{seed}_{arm}{suffix}"

    def has(self, seed, arm):
        return self._path(seed, arm, ".json").is_file()

    def load(self, seed, arm):
        return json.loads(self._path(seed, arm, ".json").read_text())

    def load_arrays(self, seed, arm):
        with np.load(self._path(seed, arm, ".npz")) as arrays:
            return dict(arrays)

    def model_path(self, seed, arm):
        return self._path(seed, arm, ".weights.h5")

    def has_model(self, seed, arm):
        return self.model_path(seed, arm).is_file()

    def save(self, seed, arm, result, arrays, model=None):
        # Arrays (and weights) first: a JSON file marks a complete run.
        np.savez(self._path(seed, arm, ".npz"), **arrays)
        if model is not None:
            model.save_weights(self.model_path(seed, arm))
        self._path(seed, arm, ".json").write_text(json.dumps(result, indent=1))


class WarmupStore:
    """Warmed-up weights on disk, one file per network and seed.

    Files are named after a digest of the warm-up's settings and of the
    network's structure, so that only the same warm-up of the same network
    is reused.
    """

    def __init__(self, directory, warmup):
        self.directory = pathlib.Path(directory) / "warmed-up"
        self.warmup = warmup

    def _path(self, model, seed, suffix):
        digest = _digest({"warmup": _warmup_config(self.warmup), "model": _structure(model),
                          "backend": keras.backend.backend(),
                          "noise_stream": stream_lib.STREAM_VERSION})
        return self.directory / f"{digest}-seed{seed}{suffix}"

    def load(self, model, seed):
        """Loads `model`'s warmed-up weights; returns its record, or `None`."""
        path = self._path(model, seed, ".json")
        if not path.is_file():
            return None
        with np.load(self._path(model, seed, ".npz")) as arrays:
            model.set_weights([arrays[f"w{index}"] for index in range(len(arrays.files))])
        return json.loads(path.read_text())

    def save(self, model, seed, record):
        # The layers' weights only: `save_weights` would also store the
        # compiled optimizer (its learning rate included), and loading that
        # would overwrite the training optimizer of the run reusing them.
        self.directory.mkdir(parents=True, exist_ok=True)
        np.savez(self._path(model, seed, ".npz"),
                 **{f"w{index}": weight for index, weight in enumerate(model.get_weights())})
        self._path(model, seed, ".json").write_text(json.dumps(record))


class RunProtocol:
    """One run: build, (warm up), train, measure."""

    def __init__(self, build_model, train_data, x_validation, y_validation, ood_data, warmup,
                 fit_kwargs, track_epochs, num_bins, scorer, warm_store):
        self.build_model = build_model
        self.train_data = train_data
        self.x_validation = x_validation
        self.y_validation = y_validation
        self.ood_data = ood_data
        self.warmup = warmup
        self.fit_kwargs = fit_kwargs
        self.track_epochs = track_epochs
        self.num_bins = num_bins
        self.scorer = scorer
        self.warm_store = warm_store

    def run(self, seed, arm):
        start = time.perf_counter()
        keras.utils.set_random_seed(seed)
        model = self.build_model()
        if not isinstance(model, keras.Model) or not getattr(model, "compiled", False):
            raise ValueError(
                "`build_model` must return a compiled keras.Model (the training "
                f"to compare); got {model!r}."
            )
        result = {"seed": seed, "arm": arm}
        if arm == "warmup":
            result.update(self._warm_up(model, seed))
        result["warmup_seconds"] = round(time.perf_counter() - start, 3)
        tracker = _EpochTracker(self) if self.track_epochs else None
        callbacks = list(self.fit_kwargs.get("callbacks") or [])
        if tracker is not None:
            callbacks.append(tracker)
        fit_kwargs = dict(self.fit_kwargs, callbacks=callbacks)
        # The data order is seeded too, so that both arms see the same batches.
        keras.utils.set_random_seed(seed + DATA_ORDER_SEED_OFFSET)
        fit_start = time.perf_counter()
        if isinstance(self.train_data, (tuple, list)):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(self.train_data))
            history = model.fit(x, y, sample_weight=sample_weight, verbose=0, **fit_kwargs)
        else:
            history = model.fit(self.train_data, verbose=0, **fit_kwargs)
        result["fit_seconds"] = round(time.perf_counter() - fit_start, 3)
        result["train_loss"] = [float(value) for value in history.history.get("loss", [])]
        arrays = self.predict(model)
        result.update(self.measure(arrays))
        if tracker is not None:
            result["epochs"] = tracker.epochs
        result["seconds"] = round(time.perf_counter() - start, 3)
        return result, arrays, model

    def predict(self, model):
        arrays = {
            "validation_outputs": _predict(model, self.x_validation),
            "validation_labels": np.asarray(self.y_validation).reshape(-1).astype("int64"),
        }
        if self.ood_data is not None:
            arrays["ood_outputs"] = _predict(model, self.ood_data)
        return arrays

    def measure(self, arrays):
        return measure(
            arrays["validation_outputs"], arrays["validation_labels"],
            arrays.get("ood_outputs"), num_bins=self.num_bins, ood_score=self.scorer,
        )

    def _warm_up(self, model, seed):
        if self.warm_store is not None:
            record = self.warm_store.load(model, seed)
            if record is not None:
                return record
        start = time.perf_counter()
        record = {"noise_confidence_before": _noise_confidence(model)}
        warmup = self.warmup
        if warmup.seed is None:
            warmup = NoiseWarmup.from_config(dict(warmup.get_config(), seed=seed + WARMUP_SEED_OFFSET))
        history = warmup.run(model)
        record["warmup_steps"] = int(history.params["steps"])
        record["warmup_run_seconds"] = round(time.perf_counter() - start, 3)
        record["noise_confidence_after"] = _noise_confidence(model)
        if self.warm_store is not None:
            self.warm_store.save(model, seed, record)
        return record


class _EpochTracker(keras.callbacks.Callback):
    """Measures the validation set before training and after every epoch."""

    def __init__(self, protocol):
        super().__init__()
        self.protocol = protocol
        self.epochs = []

    def _record(self):
        arrays = {
            "validation_outputs": _predict(self.model, self.protocol.x_validation),
            "validation_labels": np.asarray(self.protocol.y_validation).reshape(-1),
        }
        self.epochs.append(measure(arrays["validation_outputs"], arrays["validation_labels"],
                                   num_bins=self.protocol.num_bins))

    def on_train_begin(self, logs=None):
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()


def _noise_confidence(model):
    try:
        return diagnostics.noise_confidence(model).mean_confidence
    except ValueError:
        return None


def _predict(model, inputs):
    return np.asarray(model.predict(inputs, batch_size=1000, verbose=0), "float32")


def _scores(scorer, outputs, from_logits):
    return np.asarray(keras.ops.convert_to_numpy(scorer.score_outputs(outputs, from_logits=from_logits)))


def _seeds(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return tuple(range(validation.check_int("seeds", seeds, minimum=1)))
    seeds = tuple(validation.check_int("seed", seed, minimum=0) for seed in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be a count or distinct seeds, got {seeds!r}.")
    return seeds


def _warmup(warmup):
    if warmup is None:
        return NoiseWarmup(verbose=0)
    if isinstance(warmup, dict):
        return NoiseWarmup(**dict({"verbose": 0}, **warmup))
    if isinstance(warmup, NoiseWarmup):
        return warmup
    raise ValueError(f"`warmup` must be a NoiseWarmup, a dict of its arguments or None, got {warmup!r}.")


def _labelled(data, name):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"`{name}` must be a tuple (x, y) of held-out inputs and integer labels.")
    x, y = data
    y = np.asarray(keras.ops.convert_to_numpy(y))
    if len(y) == 0:
        raise ValueError(f"`{name}` is empty.")
    return x, y


def _settings(key, warmup, fit_kwargs, train_data, x_validation, ood_data, num_bins, scorer,
              track_epochs):
    def shape_of(data):
        if isinstance(data, (tuple, list)):
            return [shape_of(part) for part in data]
        shape = getattr(data, "shape", None)
        return None if shape is None else list(shape)

    from keras_noisewarm.version import __version__

    return json.loads(json.dumps({
        "key": key,
        "warmup": _warmup_config(warmup),
        "fit_kwargs": {name: repr(value) if name == "callbacks" else value
                       for name, value in fit_kwargs.items()},
        "train_shapes": shape_of(train_data),
        "validation_shape": shape_of(x_validation),
        "ood_shape": shape_of(ood_data),
        "num_bins": num_bins,
        "ood_score": keras.saving.serialize_keras_object(scorer),
        "track_epochs": bool(track_epochs),
        "backend": keras.backend.backend(),
        "noise_stream": stream_lib.STREAM_VERSION,
        "keras_noisewarm": __version__,
    }, default=repr))


def _warmup_config(warmup):
    # Verbosity does not change a run; an unset seed is set per run.
    config = {name: value for name, value in warmup.get_config().items() if name != "verbose"}
    return json.loads(json.dumps(config, default=repr))


def _structure(model):
    """Layer types and weight shapes: what identifies a network, not its names."""
    return [[type(layer).__name__, [list(w.shape) for w in layer.weights]] for layer in model.layers]


def _digest(settings):
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _noise_confidence_line(runs):
    warmed = [run for run in runs.get("warmup", []) if run.get("noise_confidence_after") is not None]
    if not warmed:
        return None
    before = [run["noise_confidence_before"] for run in warmed]
    after = [run["noise_confidence_after"] for run in warmed]
    return (
        f"Mean confidence on fresh noise: {np.median(before):.3f} before the warm-up, "
        f"{np.median(after):.3f} after (median over seeds)."
    )


def _time_line(runs):
    fit = [run["fit_seconds"] for arm_runs in runs.values() for run in arm_runs]
    warm = [run["warmup_seconds"] for run in runs.get("warmup", [])]
    text = f"Training took {np.median(fit):.1f} s per run (median)"
    if warm:
        text += f"; the warm-up {np.median(warm):.1f} s ({np.median(warm) / np.median(fit):.0%} of training)"
    return text + "."
