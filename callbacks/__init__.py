"""Lightning callbacks over the core: the landscape analysis during training, and the last-checkpoint writer."""

from .checkpoint import LastCheckpoint
from .landscape import LandscapeCallback

__all__ = ["LandscapeCallback", "LastCheckpoint"]
