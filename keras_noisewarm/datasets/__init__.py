"""Dataset loaders: the real loading code, with a local path for offline use.

Each loader returns `(x_train, y_train), (x_test, y_test)` as NumPy arrays in
the layout of `keras.datasets` (uint8 images, channels last; int64 labels).
With `path` it reads the official file formats from that folder; with
`path=None` it reads them from `$KERAS_NOISEWARM_DATA/<dataset>` when that
variable is set, and otherwise calls `keras.datasets` (which downloads). SVHN, used as
out-of-distribution data only, loads one split at a time (`load_svhn`).
"""

from keras_noisewarm.datasets.cifar10 import load_cifar10
from keras_noisewarm.datasets.idx import load_fashion_mnist
from keras_noisewarm.datasets.idx import load_mnist
from keras_noisewarm.datasets.paths import DATA_DIR_VARIABLE
from keras_noisewarm.datasets.svhn import load_svhn
