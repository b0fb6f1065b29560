"""Split conformal prediction: sets with guaranteed coverage, and OOD thresholds.

Conventions: non-conformity scores are lower for more plausible labels; the
conformal quantile of `n` held-out scores is the `ceil((n + 1)(1 - alpha))`-th
smallest; prediction sets are boolean `(N, K)` arrays.
"""

from keras_noisewarm.conformal.layers import APSPredictionSets
from keras_noisewarm.conformal.layers import LACPredictionSets
from keras_noisewarm.conformal.layers import RAPSPredictionSets
from keras_noisewarm.conformal.quantile import conformal_quantile
from keras_noisewarm.conformal.quantile import conformal_rank
from keras_noisewarm.conformal.quantile import ood_acceptance_threshold
from keras_noisewarm.conformal.scores import aps_scores
from keras_noisewarm.conformal.scores import label_scores
from keras_noisewarm.conformal.scores import lac_scores
from keras_noisewarm.conformal.scores import raps_scores
from keras_noisewarm.conformal.sets import average_set_size
from keras_noisewarm.conformal.sets import coverage
from keras_noisewarm.conformal.sets import prediction_sets
