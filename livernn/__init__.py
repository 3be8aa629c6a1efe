"""livernn: play a neural note generator live."""

from livernn.errors import LivernnError

__version__ = "0.1.0"
__all__ = ["LivernnError", "__version__"]
