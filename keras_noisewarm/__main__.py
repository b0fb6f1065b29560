import sys

from keras_noisewarm.cli import main

sys.exit(main())
