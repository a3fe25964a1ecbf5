"""Initial weights that depend on the config's seed only, not on who else uses Python's `random`.

Keras gives every layer built without an explicit seed (the kernel initializers of Conv2D and
Dense, a SeedGenerator(None)) a seed drawn from Python's global `random` module
(`keras.src.random.seed_generator.make_default_seed`). `keras.utils.set_random_seed` seeds that
module, but any other thread of the process (a telemetry or service thread of MLflow or Prefect,
a test harness) that draws from it while a model is being built changes the model's initial
weights, and with them every figure of the run. Inside `default_seeds(seed)`, those draws come
from a private `random.Random(seed)`: the same sequence `random.seed(seed)` gives the global one,
so a model built right after `set_random_seed(seed)` keeps the weights it had before.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)
_BUILDING = threading.RLock()  # one model build at a time owns the private sequence


@contextlib.contextmanager
def default_seeds(seed: int) -> Iterator[None]:
    """Draw Keras' default layer seeds from `random.Random(seed)` inside the block."""
    from keras.src.random import seed_generator

    if not hasattr(seed_generator, "python_random"):  # a Keras that draws its seeds elsewhere
        log.warning("this Keras draws default seeds elsewhere; initial weights follow global random")
        yield
        return
    with _BUILDING:
        shared = seed_generator.python_random
        seed_generator.python_random = random.Random(seed)
        try:
            yield
        finally:
            seed_generator.python_random = shared
