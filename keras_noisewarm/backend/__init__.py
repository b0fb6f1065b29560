"""The only place in the package with code written per Keras backend.

Everything else uses `keras.ops`; what `keras.ops` cannot express (a gradient
with respect to a model's inputs, needed by ODIN, or to its weights), or what differs in speed
between backends (where to draw the warm-up's noise, which input pipeline
evaluates held-out data fastest, how to find each row's top label and sum a
histogram, whether an eager metric update is worth compiling, which slice of
a global batch a `tf.distribute` replica trains on, how a SavedModel is
written), lives here, dispatched on `keras.backend.backend()`.
"""

from keras_noisewarm.backend.compilation import compile_repeated_calls
from keras_noisewarm.backend.compilation import values_are_concrete
from keras_noisewarm.backend.datasets import reusable_evaluation_data
from keras_noisewarm.backend.export import endpoint_options
from keras_noisewarm.backend.export import exports_in_process
from keras_noisewarm.backend.gradients import gradients
from keras_noisewarm.backend.gradients import input_gradient
from keras_noisewarm.backend.reductions import bin_sums
from keras_noisewarm.backend.reductions import detected_top_label
from keras_noisewarm.backend.reductions import top_label
from keras_noisewarm.backend.replicas import replica_share
from keras_noisewarm.backend.replicas import replicas_in_sync
