"""Dataset shift: CIFAR-10-C corruptions and calibration under them.

`corrupt(images, "motion_blur", 3)` corrupts a NumPy batch,
`corrupt_dataset` a `tf.data` pipeline, and `evaluate_shift` measures a
model's accuracy, ECE, NLL and Brier score on every corruption and severity
(`keras_noisewarm.plot.shift_boxplot` draws the result).
"""

from keras_noisewarm.shift.corruptions import CORRUPTIONS
from keras_noisewarm.shift.corruptions import SEVERITIES
from keras_noisewarm.shift.corruptions import corrupt
from keras_noisewarm.shift.corruptions import corrupt_dataset
from keras_noisewarm.shift.corruptions import corruption_names
from keras_noisewarm.shift.evaluate import SHIFT_METRICS
from keras_noisewarm.shift.evaluate import evaluate_shift
from keras_noisewarm.shift.evaluate import severity_means
from keras_noisewarm.shift.evaluate import shifted_sets
