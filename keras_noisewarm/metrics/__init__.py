"""Streaming calibration metrics, proper scoring rules and selective
prediction (AURC) for Keras 3.

Every metric here is a `keras.metrics.Metric` with a fixed-size state: use
it in `model.compile(metrics=[...])`, in `model.evaluate`, or on its own
with `update_state` / `result` / `reset_state`.
"""

from keras_noisewarm.metrics.calibration import AdaptiveCalibrationError
from keras_noisewarm.metrics.calibration import ClasswiseCalibrationError
from keras_noisewarm.metrics.calibration import DebiasedL2CalibrationError
from keras_noisewarm.metrics.calibration import ExpectedCalibrationError
from keras_noisewarm.metrics.calibration import MaximumCalibrationError
from keras_noisewarm.metrics.scoring import BrierScore
from keras_noisewarm.metrics.scoring import NegativeLogLikelihood
from keras_noisewarm.metrics.selective import AreaUnderRiskCoverageCurve
from keras_noisewarm.metrics.selective import ExcessAreaUnderRiskCoverageCurve
from keras_noisewarm.metrics.selective import SelectiveAccuracy
