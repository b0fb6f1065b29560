"""Streaming calibration metrics, proper scoring rules and selective
prediction (AURC) for Keras 3.

Every metric here is a `keras.metrics.Metric` with a fixed-size state: use
it in `model.compile(metrics=[...])`, in `model.evaluate`, or on its own
with `update_state` / `result` / `reset_state`. Classifiers: the ECE family
(`calibration`) and NLL / Brier score (`scoring`). Regression models that
predict a mean and a variance (or an interval): `regression`, each metric
with a NumPy function of the same name in lower case.
"""

from keras_noisewarm.metrics.calibration import AdaptiveCalibrationError
from keras_noisewarm.metrics.calibration import ClasswiseCalibrationError
from keras_noisewarm.metrics.calibration import DebiasedL2CalibrationError
from keras_noisewarm.metrics.calibration import ExpectedCalibrationError
from keras_noisewarm.metrics.calibration import MaximumCalibrationError
from keras_noisewarm.metrics.calibration import MultiLabelCalibrationError
from keras_noisewarm.metrics.regression import ExpectedNormalizedCalibrationError
from keras_noisewarm.metrics.regression import GaussianNegativeLogLikelihood
from keras_noisewarm.metrics.regression import IntervalCoverage
from keras_noisewarm.metrics.regression import IntervalCoverageError
from keras_noisewarm.metrics.regression import QuantileCalibrationError
from keras_noisewarm.metrics.regression import expected_normalized_calibration_error
from keras_noisewarm.metrics.regression import gaussian_negative_log_likelihood
from keras_noisewarm.metrics.regression import interval_coverage
from keras_noisewarm.metrics.regression import quantile_calibration_error
from keras_noisewarm.metrics.scoring import BrierScore
from keras_noisewarm.metrics.scoring import NegativeLogLikelihood
from keras_noisewarm.metrics.selective import AreaUnderRiskCoverageCurve
from keras_noisewarm.metrics.selective import ExcessAreaUnderRiskCoverageCurve
from keras_noisewarm.metrics.selective import SelectiveAccuracy
