"""Post-hoc calibration of a trained classifier, as Keras layers.

Fit on held-out outputs, then append the layer to the model: the calibrated
model saves, loads and exports with the fitted values as weights.
"""

from keras_noisewarm.calibration.temperature import TemperatureScaling
from keras_noisewarm.calibration.temperature import fit_temperature
from keras_noisewarm.calibration.vector import VectorScaling
from keras_noisewarm.calibration.vector import fit_vector_scaling
