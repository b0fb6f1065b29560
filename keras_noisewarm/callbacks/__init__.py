"""Keras callbacks: the noise warm-up inside `fit`, and calibration watched epoch by epoch."""

from keras_noisewarm.callbacks.calibration_monitor import CalibrationMonitor
from keras_noisewarm.callbacks.warmup import NoiseWarmupCallback
