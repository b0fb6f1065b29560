"""Keras callbacks: the noise warm-up inside `fit`, the rule that stops a
warm-up once the model sits at its prior, calibration watched epoch by epoch,
and the alignment of feedback-alignment networks."""

from keras_noisewarm.callbacks.calibration_monitor import CalibrationMonitor
from keras_noisewarm.callbacks.feedback_alignment_monitor import FeedbackAlignmentMonitor
from keras_noisewarm.callbacks.warmup import NoiseWarmupCallback
from keras_noisewarm.callbacks.warmup_stopping import WarmupStopping
