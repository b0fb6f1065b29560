"""Networks ready for the warm-up, in plain Keras layers.

`cifar_resnet` is the ResNet of the authors' CIFAR-10 experiments (CIFAR
stem, BasicBlocks, Kaiming fan-in initialisation, BatchNorm, logits out).
Warm-up on other backbones (keras-hub's ResNet, DenseNet and ViT,
keras.applications) needs nothing from here: see docs/BACKBONES.md.
"""

from keras_noisewarm.models.resnet import BLOCKS_PER_STAGE
from keras_noisewarm.models.resnet import cifar_resnet
