"""keras-noisewarm: random-noise warm-up for calibrated Keras 3 models.

Train a network briefly on Gaussian noise with uniformly random labels before
training it on data (Cheon & Paik, Nature Machine Intelligence 2026): its
confidence starts at chance level, it stays calibrated through training, and
it is less confident on inputs it has never seen.
"""

from keras_noisewarm import calibration
from keras_noisewarm import callbacks
from keras_noisewarm import conformal
from keras_noisewarm import datasets
from keras_noisewarm import metrics
from keras_noisewarm import ood
from keras_noisewarm import plot
from keras_noisewarm.calibration import TemperatureScaling
from keras_noisewarm.calibration import VectorScaling
from keras_noisewarm.diagnostics import NoiseConfidence
from keras_noisewarm.diagnostics import noise_confidence
from keras_noisewarm.noise import noise_dataset
from keras_noisewarm.ood import evaluate_ood
from keras_noisewarm.version import __version__
from keras_noisewarm.warmup import NoiseWarmup
from keras_noisewarm.warmup import warmup
