"""keras-noisewarm: random-noise warm-up for calibrated Keras 3 models.

Train a network briefly on noise with uninformative targets before training
it on data (Cheon & Paik, Nature Machine Intelligence 2026): its confidence
starts at chance level, it stays calibrated through training, and it is less
confident on inputs it has never seen.

The public API is re-exported here; the subpackages hold the rest:
`noise` (noise families and the stream), `tasks` (what an output predicts),
`metrics`, `callbacks`, `posthoc` (temperature and vector scaling, isotonic
regression), `ood`, `conformal`, `shift` (image corruptions, calibration
under shift), `selective` (risk-coverage, AURC), `smooth_calibration`
(smooth ECE), `plot`, `datasets`, `serving` (TF Serving signatures),
`feedback_alignment` (learning without weight transport).
"""

from keras_noisewarm import callbacks
from keras_noisewarm import compare
from keras_noisewarm import conformal
from keras_noisewarm import datasets
from keras_noisewarm import feedback_alignment
from keras_noisewarm import metrics
from keras_noisewarm import noise
from keras_noisewarm import ood
from keras_noisewarm import plot
from keras_noisewarm import outputs
from keras_noisewarm import posthoc
from keras_noisewarm import selective
from keras_noisewarm import serving
from keras_noisewarm import shift
from keras_noisewarm import smooth_calibration
from keras_noisewarm import tasks
from keras_noisewarm.diagnostics import NoiseConfidence
from keras_noisewarm.diagnostics import noise_confidence
from keras_noisewarm.compare import compare_warmup
from keras_noisewarm.noise import noise_dataset
from keras_noisewarm.noise_warmup import NoiseWarmup
from keras_noisewarm.noise_warmup import warmup
from keras_noisewarm.ood import evaluate_ood
from keras_noisewarm.posthoc import IsotonicCalibration
from keras_noisewarm.posthoc import TemperatureScaling
from keras_noisewarm.posthoc import VectorScaling
from keras_noisewarm.serving import export_serving
from keras_noisewarm.version import __version__
