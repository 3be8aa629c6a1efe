"""The control bus, as the controls know it: the one in ``livernn.bus``.

It lives outside ``livernn.controls`` so the engine can hold one without importing the
controls (tests/test_layers.py); this name keeps working for patches and scripts.
"""

from livernn.bus import Callback, ControlBus, Reading, Value

__all__ = ["Callback", "ControlBus", "Reading", "Value"]
