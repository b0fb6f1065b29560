"""Feedback alignment: learning without weight transport.

`FeedbackAlignmentDense` and `FeedbackAlignmentConv2D` send a layer's error
backwards through a fixed random matrix (kernel) instead of the transposed
forward weights (Lillicrap et al., 2016); `to_feedback_alignment` turns a
Sequential or functional model into its feedback-alignment twin,
`to_backpropagation` back. The diagnostics measure how the network
aligns: angles between forward and feedback weights, between feedback-
alignment updates and true gradients, and the effective rank of the
weights; `keras_noisewarm.callbacks.FeedbackAlignmentMonitor` logs them per
epoch. Noise pretraining (Cheon, Lee & Paik, NeurIPS 2024) is
`keras_noisewarm.warmup` applied to a feedback-alignment model: it trains
through the same feedback matrices.
"""

from keras_noisewarm.feedback_alignment.conversion import to_backpropagation
from keras_noisewarm.feedback_alignment.conversion import to_feedback_alignment
from keras_noisewarm.feedback_alignment.convolutional import FeedbackAlignmentConv2D
from keras_noisewarm.feedback_alignment.dense import FeedbackAlignmentDense
from keras_noisewarm.feedback_alignment.dense import default_feedback_initializer
from keras_noisewarm.feedback_alignment.dense import feedback_matmul
from keras_noisewarm.feedback_alignment.diagnostics import FEEDBACK_LAYERS
from keras_noisewarm.feedback_alignment.diagnostics import angle_between
from keras_noisewarm.feedback_alignment.diagnostics import effective_rank
from keras_noisewarm.feedback_alignment.diagnostics import feedback_is_used
from keras_noisewarm.feedback_alignment.diagnostics import feedback_layers
from keras_noisewarm.feedback_alignment.diagnostics import kernel_layers
from keras_noisewarm.feedback_alignment.diagnostics import update_angles
from keras_noisewarm.feedback_alignment.diagnostics import weight_effective_ranks
from keras_noisewarm.feedback_alignment.diagnostics import weight_feedback_angles
