"""Post-hoc calibration of a trained classifier, as Keras layers.

Fit on held-out outputs, then append the layer to the model: the calibrated
model saves, loads and exports with the fitted values as weights. Every
layer here is a `keras_noisewarm.fitted_layer.FittedOutputLayer`.
"""

from keras_noisewarm.posthoc.temperature import TemperatureScaling
from keras_noisewarm.posthoc.temperature import fit_temperature
from keras_noisewarm.posthoc.vector import VectorScaling
from keras_noisewarm.posthoc.vector import fit_vector_scaling
