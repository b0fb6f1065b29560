"""Post-hoc calibration of a trained classifier, as Keras layers.

Temperature scaling (one number), vector scaling (a scale and a bias per
class) and isotonic regression (a monotone map per class).

Fit on held-out outputs, then append the layer to the model: the calibrated
model saves, loads and exports with the fitted values as weights. Every
layer here is a `keras_noisewarm.fitted_layer.FittedOutputLayer`.
"""

from keras_noisewarm.posthoc.isotonic import IsotonicCalibration
from keras_noisewarm.posthoc.isotonic import fit_isotonic
from keras_noisewarm.posthoc.temperature import TemperatureScaling
from keras_noisewarm.posthoc.temperature import fit_temperature
from keras_noisewarm.posthoc.vector import VectorScaling
from keras_noisewarm.posthoc.vector import fit_vector_scaling
