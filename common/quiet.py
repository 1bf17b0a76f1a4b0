"""Quiet command lines: a run shows its own progress (one line per epoch, progress bars) and its
result, not the frameworks' chatter (TensorFlow's C++ log, Google client libraries'
FutureWarnings, Keras' "input ran out of data", absl and Beam warnings). `--verbose` keeps it all.

Call `quiet()` before TensorFlow is imported: its C++ log level is read once, at import.
"""

import logging
import os
import warnings

FRAMEWORK_LOGGERS = ("tensorflow", "absl", "apache_beam", "tfx", "ml_metadata")


def quiet(verbose: bool = False) -> None:
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors surface as Python exceptions
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # for any worker processes
    warnings.filterwarnings("ignore")
    for name in FRAMEWORK_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
