"""One call from a trained model and two datasets to a table of OOD metrics."""

import numpy as np

from keras_noisewarm import validation
from keras_noisewarm.ood import metrics as ood_metrics
from keras_noisewarm.ood import scores as scores_lib

DEFAULT_SCORES = ("msp", "max_logit", "energy", "odin")
METRICS = ("auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr")


def evaluate_ood(
    model,
    id_data,
    ood_data,
    scores=DEFAULT_SCORES,
    positive="in",
    from_logits=None,
    batch_size=scores_lib.DEFAULT_BATCH_SIZE,
):
    """Scores in- and out-of-distribution inputs and reports every metric per score.

    Conventions (see `keras_noisewarm.ood.metrics`): scores are higher for
    more in-distribution inputs; AUROC does not depend on `positive`;
    `aupr_in` always takes in-distribution inputs as positives and
    `aupr_out` out-of-distribution ones; `fpr_at_95_tpr` follows `positive`.

    Args:
        model: A trained Keras classifier.
        id_data: In-distribution inputs (a NumPy array; anything
            `model.predict` accepts if no score is ODIN). Only inputs: no
            labels.
        ood_data: Out-of-distribution inputs, same kind.
        scores: Registered names (`keras_noisewarm.ood.score_names()`:
            `"msp"`, `"max_logit"`, `"energy"`, `"entropy"`, `"odin"`, ...)
            or scorer objects such as `ODIN(temperature=1000, input_std=0.3)`.
        positive: `"in"` or `"out"`, the positives of `fpr_at_95_tpr`.
        from_logits: Whether the model outputs logits, for scores given by
            name; `None` (default) detects it.
        batch_size: Inputs per forward pass.

    Returns:
        A dict `{score name: {metric name: float}}` with the metrics
        `"auroc"`, `"aupr_in"`, `"aupr_out"` and `"fpr_at_95_tpr"`, in the
        order of `scores`.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> rng = np.random.default_rng(0)
    >>> table = evaluate_ood(model, rng.normal(size=(20, 4)),
    ...                      5 * rng.normal(size=(20, 4)), scores=["msp"])
    >>> sorted(table["msp"])
    ['aupr_in', 'aupr_out', 'auroc', 'fpr_at_95_tpr']
    """
    validation.check_choice("positive", positive, ("in", "out"))
    validation.check_int("batch_size", batch_size)
    if isinstance(scores, (str, scores_lib.OODScore)):
        scores = [scores]
    table = {}
    for identifier in scores:
        scorer = scores_lib.get(identifier, from_logits=from_logits)
        if scorer.key in table:
            raise ValueError(
                f"Two scores are named {scorer.key!r}; give them distinct "
                "`name=` arguments so that both appear in the table."
            )
        id_scores = np.asarray(scorer(model, id_data, batch_size=batch_size))
        ood_scores = np.asarray(scorer(model, ood_data, batch_size=batch_size))
        table[scorer.key] = {
            "auroc": ood_metrics.auroc(id_scores, ood_scores),
            "aupr_in": ood_metrics.aupr_in(id_scores, ood_scores),
            "aupr_out": ood_metrics.aupr_out(id_scores, ood_scores),
            "fpr_at_95_tpr": ood_metrics.fpr_at_95_tpr(
                id_scores, ood_scores, positive=positive
            ),
        }
    return table


def format_ood_table(table, digits=3):
    """The table of `evaluate_ood` as aligned plain text, one row per score.

    Example:

    >>> print(format_ood_table({"msp": {"auroc": 0.9, "fpr_at_95_tpr": 0.5}}))
    score  auroc  fpr_at_95_tpr
    msp    0.900  0.500
    """
    columns = list(dict.fromkeys(name for row in table.values() for name in row))
    rows = [["score", *columns]]
    for score_name, row in table.items():
        rows.append([score_name, *(f"{row[name]:.{digits}f}" for name in columns)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) + 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows
    )
