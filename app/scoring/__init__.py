"""Daily conversion scoring for users of a real-estate portal."""

import os

__version__ = "0.1.0"

# The scoring worker shares a few cores with Dask and luigid. OpenMP threads (used by
# scikit-learn's gradient boosting) busy-wait by default, which makes training many times
# slower whenever another process wants the CPU. This must be set before scikit-learn loads
# its OpenMP runtime; an explicit setting in the environment still wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
