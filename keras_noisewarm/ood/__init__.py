"""Out-of-distribution detection: scores, metrics, an evaluation table, a threshold layer.

Every score is higher for more in-distribution inputs, and every score is
registered by name (`get("energy")`, `score_names()`). See
`keras_noisewarm.ood.metrics` for which class each metric calls positive.
"""

from keras_noisewarm.ood.evaluate import evaluate_ood
from keras_noisewarm.ood.evaluate import format_ood_table
from keras_noisewarm.ood.metrics import aupr
from keras_noisewarm.ood.metrics import aupr_in
from keras_noisewarm.ood.metrics import aupr_out
from keras_noisewarm.ood.metrics import auroc
from keras_noisewarm.ood.metrics import fpr_at_95_tpr
from keras_noisewarm.ood.metrics import fpr_at_tpr
from keras_noisewarm.ood.metrics import roc_curve
from keras_noisewarm.ood.odin import ODIN
from keras_noisewarm.ood.odin import odin_perturbation
from keras_noisewarm.ood.odin import odin_score
from keras_noisewarm.ood.scores import Energy
from keras_noisewarm.ood.scores import MaxLogit
from keras_noisewarm.ood.scores import MaxSoftmaxProbability
from keras_noisewarm.ood.scores import NegativeEntropy
from keras_noisewarm.ood.scores import OODScore
from keras_noisewarm.ood.scores import OutputScore
from keras_noisewarm.ood.scores import energy_score
from keras_noisewarm.ood.scores import get
from keras_noisewarm.ood.scores import max_logit
from keras_noisewarm.ood.scores import max_softmax_probability
from keras_noisewarm.ood.scores import negative_entropy
from keras_noisewarm.ood.scores import register_score
from keras_noisewarm.ood.scores import score_names
from keras_noisewarm.ood.threshold import OODThreshold
