"""Training pipeline (torch, torchvision, albumentations): data, network, loop, evaluation, export.

Install with ``pip install 'mottling[train]'``. Nothing in ``mottling/`` imports this package.
"""

import os

# On a shared, busy CPU, OpenMP threads that spin while waiting slow training down many times
# over; let them sleep instead. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
