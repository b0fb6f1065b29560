"""A callback that measures calibration on held-out data after every epoch."""

import os
import warnings

import keras
import numpy as np

from keras_noisewarm import backend
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import inspection
from keras_noisewarm import metrics as metrics_lib
from keras_noisewarm import validation
from keras_noisewarm.metrics import calibration as calibration_metrics
from keras_noisewarm.ood import metrics as ood_metrics
from keras_noisewarm.ood import scores as ood_scores
from keras_noisewarm.shared_layers import SharedLayersModel

TRAJECTORY_FILENAME = "calibration_trajectory.png"
RELIABILITY_FILENAME = "reliability_epoch_{epoch:03d}.png"


class CalibrationMonitor(keras.callbacks.Callback):
    """Measures calibration on held-out data at the end of every epoch.

    After each epoch the model predicts `validation_data` (in inference mode,
    one pass, compiled like `model.evaluate`) and the monitor writes into the
    epoch's `logs`, with `prefix` (`"val_"`) in front of each name:

    - `ece`: expected calibration error (`num_bins` equal-width bins),
    - `mce`: maximum calibration error,
    - `nll`: mean negative log-likelihood,
    - `brier_score`: mean Brier score,
    - `accuracy`: top-label accuracy,
    - `confidence`: mean top-label confidence,

    and, given `ood_data`, `ood_confidence` (the mean confidence on the
    out-of-distribution inputs) and `ood_auroc` (AUROC of telling the
    validation inputs from the out-of-distribution ones by the OOD score
    `ood_score`, the maximum softmax probability by default). Callbacks listed after the monitor, and the
    `History`, progress bar, `CSVLogger` and `TensorBoard`, see these values:
    put the monitor before `EarlyStopping` or `ModelCheckpoint`, and give
    those `mode="min"` (or `"max"` for accuracy and AUROC), since the values
    are not compiled metrics of the model whose direction Keras could look
    up.

    The model's own compiled loss, metrics and state are not touched: the
    monitor evaluates a wrapper that shares the model's layers.

    With `plot_dir`, it also saves a reliability diagram every
    `reliability_freq` epochs (`reliability_epoch_001.png`, ...) and, when
    training ends, the confidence-vs-accuracy trajectory of all epochs
    (`calibration_trajectory.png`).

    Args:
        validation_data: Held-out labelled data, in any form `model.evaluate`
            takes: a tuple `(x, y)` or `(x, y, sample_weight)` of arrays, or
            a `tf.data.Dataset`, `keras.utils.PyDataset`, torch `DataLoader`
            or Python generator yielding such tuples. A generator is read
            anew each epoch, so it must not end: give `steps`.
        ood_data: Optional out-of-distribution inputs, an array or any form
            `model.predict` takes (labels, if any, are ignored).
        batch_size: Batch size for arrays (ignored for datasets and
            generators, which batch themselves).
        steps: Number of batches to read from `validation_data` and
            `ood_data` per epoch; `None` reads them to the end.
        num_bins: Number of equal-width confidence bins of the ECE and MCE.
        from_logits: Whether the model outputs logits; `None` detects it
            when training begins with one forward pass on noise (see
            `keras_noisewarm.inspection.inspect_model`).
        sparse_y_true: Whether the labels are integers (default) or one-hot.
        prefix: Put in front of every name written into `logs`.
        plot_dir: Directory to save the figures in; `None` saves none.
        reliability_freq: Save a reliability diagram every this many epochs
            (0: none; only with `plot_dir`).
        ood_score: The score of `ood_auroc`: a registered name
            (`keras_noisewarm.ood.score_names()`) or a scorer computed from
            outputs (not ODIN). Default `"msp"`.

    Attributes:
        trajectory: Per-epoch `"epoch"`, `"accuracy"` and `"confidence"`
            lists of the current or last fit.

    Example:

    ```python
    monitor = keras_noisewarm.callbacks.CalibrationMonitor(
        (x_val, y_val), ood_data=x_ood, plot_dir="calibration_plots"
    )
    model.fit(
        x_train, y_train, epochs=30,
        callbacks=[
            monitor,
            keras.callbacks.EarlyStopping(monitor="val_ece", mode="min", patience=5),
            keras.callbacks.CSVLogger("training.csv"),
        ],
    )
    ```
    """

    def __init__(
        self,
        validation_data,
        ood_data=None,
        batch_size=256,
        steps=None,
        num_bins=calibration_metrics.DEFAULT_NUM_BINS,
        from_logits=None,
        sparse_y_true=True,
        prefix="val_",
        plot_dir=None,
        reliability_freq=1,
        ood_score="msp",
    ):
        super().__init__()
        _check_arguments(
            validation_data, batch_size, steps, num_bins, from_logits, sparse_y_true,
            prefix, reliability_freq,
        )
        self.ood_scorer = ood_scores.get(ood_score, from_logits=from_logits)
        if not isinstance(self.ood_scorer, ood_scores.OutputScore):
            raise ValueError(
                f"The monitor scores the model's outputs; {self.ood_scorer.key!r} "
                "needs input gradients. Use one of "
                f"{[n for n in ood_scores.score_names() if n != 'odin']}."
            )
        self.ood_score = ood_score
        self.validation_data = validation_data
        self.ood_data = ood_data
        self.batch_size = batch_size
        self.steps = steps
        self.num_bins = num_bins
        self.from_logits = from_logits
        self.sparse_y_true = sparse_y_true
        self.prefix = prefix
        self.plot_dir = plot_dir
        self.reliability_freq = reliability_freq
        self.trajectory = None
        self._evaluator = None
        self._evaluation_dataset = None
        self._ood_dataset = None

    def on_train_begin(self, logs=None):
        from_logits = self.from_logits
        if from_logits is None:
            from_logits = self._detect_from_logits()
        self._from_logits = from_logits
        options = dict(
            num_bins=self.num_bins,
            from_logits=from_logits,
            sparse_y_true=self.sparse_y_true,
        )
        self._ece = metrics_lib.ExpectedCalibrationError(**options)
        self._metrics = {
            "ece": self._ece,
            "mce": metrics_lib.MaximumCalibrationError(**options),
            "nll": metrics_lib.NegativeLogLikelihood(
                from_logits=from_logits, sparse_y_true=self.sparse_y_true
            ),
            "brier_score": metrics_lib.BrierScore(
                from_logits=from_logits, sparse_y_true=self.sparse_y_true
            ),
        }
        self._evaluator = _MetricsOnlyModel(self.model, name=f"{self.model.name}_calibration_monitor")
        # Weighted, so that `(x, y, sample_weight)` weighs the predictions.
        self._evaluator.compile(weighted_metrics=list(self._metrics.values()))
        # Built once per fit rather than by every epoch's evaluate() and
        # predict().
        self._evaluation_dataset = backend.reusable_evaluation_data(
            *self._unpacked_validation_data(), batch_size=self.batch_size
        )
        self._ood_dataset = None
        if self.ood_data is not None:
            self._ood_dataset = backend.reusable_evaluation_data(
                self.ood_data, None, None, batch_size=self.batch_size
            )
        self.trajectory = {"epoch": [], "accuracy": [], "confidence": []}
        if self.plot_dir is not None:
            os.makedirs(self.plot_dir, exist_ok=True)

    def evaluate(self):
        """Measures the model now.

        Returns:
            A dict of floats keyed by the names listed above, without the
            prefix.
        """
        if self._evaluator is None:
            raise RuntimeError(
                "CalibrationMonitor.evaluate() runs inside model.fit, after "
                "training has begun."
            )
        inputs, labels, sample_weight = self._unpacked_validation_data()
        if self._evaluation_dataset is not None:
            self._evaluator.evaluate(self._evaluation_dataset, steps=self.steps, verbose=0)
        else:
            self._evaluator.evaluate(
                inputs,
                labels,
                sample_weight=sample_weight,
                batch_size=self.batch_size,
                steps=self.steps,
                verbose=0,
            )
        results = {
            name: float(keras.ops.convert_to_numpy(metric.result()))
            for name, metric in self._metrics.items()
        }
        # Accuracy and mean confidence from the ECE's own totals: the two
        # numbers the reliability diagram and the trajectory compare.
        count = _total(self._ece.bin_counts)
        results["accuracy"] = _total(self._ece.bin_correct_sums) / count
        results["confidence"] = _total(self._ece.bin_confidence_sums) / count
        if self.ood_data is not None:
            _, id_scores = self._confidences_and_scores(inputs, self._evaluation_dataset)
            ood_confidences, ood_scores_ = self._confidences_and_scores(
                self.ood_data, self._ood_dataset
            )
            results["ood_confidence"] = float(np.mean(ood_confidences))
            results["ood_auroc"] = ood_metrics.auroc(id_scores, ood_scores_)
        return results

    def on_epoch_end(self, epoch, logs=None):
        results = self.evaluate()
        if logs is not None:
            for name, value in results.items():
                key = self.prefix + name
                if key in logs:
                    warnings.warn(
                        f"CalibrationMonitor overwrites {key!r}, which was "
                        "already in the logs; pass prefix=... to keep both.",
                        stacklevel=2,
                    )
                logs[key] = value
        self.trajectory["epoch"].append(epoch)
        self.trajectory["accuracy"].append(results["accuracy"])
        self.trajectory["confidence"].append(results["confidence"])
        if (
            self.plot_dir is not None
            and self.reliability_freq
            and (epoch + 1) % self.reliability_freq == 0
        ):
            self._save_reliability_diagram(epoch)

    def on_train_end(self, logs=None):
        if self.plot_dir is None or not self.trajectory["epoch"]:
            return
        from keras_noisewarm import plot

        figure = plot.trajectory_plot(
            self.trajectory["accuracy"], self.trajectory["confidence"]
        )
        plot.save_figure(figure, os.path.join(self.plot_dir, TRAJECTORY_FILENAME))

    def _save_reliability_diagram(self, epoch):
        from keras_noisewarm import plot

        figure = plot.reliability_diagram(
            metric=self._ece, title=f"Reliability diagram, epoch {epoch + 1}"
        )
        path = os.path.join(
            self.plot_dir, RELIABILITY_FILENAME.format(epoch=epoch + 1)
        )
        plot.save_figure(figure, path)

    def _unpacked_validation_data(self):
        if isinstance(self.validation_data, (tuple, list)):
            return keras.utils.unpack_x_y_sample_weight(tuple(self.validation_data))
        return self.validation_data, None, None

    def _outputs(self, data, dataset=None):
        """The model's outputs on `data` as a NumPy `(N, K)` array.

        `dataset`, if not `None`, holds the same inputs as `data`, batched.
        """
        if dataset is not None:
            outputs = self._evaluator.predict(dataset, steps=self.steps, verbose=0)
        else:
            outputs = self._evaluator.predict(
                data, batch_size=self.batch_size, steps=self.steps, verbose=0
            )
        outputs = np.asarray(outputs, dtype="float32")
        return outputs.reshape(-1, outputs.shape[-1])

    def _confidences_and_scores(self, data, dataset=None):
        """Top-label confidence and OOD score of each prediction, as NumPy."""
        outputs = self._outputs(data, dataset)
        probabilities = outputs_lib.probabilities_of(outputs, self._from_logits)
        if outputs.shape[-1] == 1:
            scores = probabilities.max(axis=-1)
        else:
            scores = keras.ops.convert_to_numpy(
                self.ood_scorer.score_outputs(outputs, from_logits=self._from_logits)
            )
        return probabilities.max(axis=-1), np.asarray(scores, dtype="float64")

    def _detect_from_logits(self):
        try:
            return inspection.inspect_model(self.model).from_logits
        except ValueError as error:
            raise ValueError(
                "CalibrationMonitor could not tell whether the model outputs "
                f"logits or probabilities: {error} Pass from_logits=True or "
                "from_logits=False to CalibrationMonitor."
            ) from error

class _MetricsOnlyModel(SharedLayersModel):
    """Shares the layers of the model; evaluates the monitor's metrics only.

    A model of its own, so that compiling it leaves the user's compiled
    loss, metrics and `evaluate` alone.
    """

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # Only the metrics are wanted; no loss (nor the model's
        # regularisation losses) is computed.
        return keras.ops.zeros(())


def _check_arguments(
    data, batch_size, steps, num_bins, from_logits, sparse_y_true, prefix, reliability_freq
):
    if data is None:
        raise ValueError("CalibrationMonitor needs validation_data.")
    if isinstance(data, (tuple, list)) and len(data) not in (2, 3):
        raise ValueError(
            "validation_data must be a tuple (x, y) or (x, y, "
            f"sample_weight); got a {type(data).__name__} of length "
            f"{len(data)}."
        )
    validation.check_int("batch_size", batch_size)
    validation.check_int("num_bins", num_bins)
    validation.check_optional_int("steps", steps)
    validation.check_int("reliability_freq", reliability_freq, minimum=0)
    validation.check_from_logits(from_logits)
    validation.check_bool("sparse_y_true", sparse_y_true)
    if not isinstance(prefix, str):
        raise ValueError(f"`prefix` must be a string, got {prefix!r}.")


def _total(variable):
    return float(np.sum(keras.ops.convert_to_numpy(variable.value), dtype="float64"))
