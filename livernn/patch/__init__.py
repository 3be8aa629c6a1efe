"""Patch files: the TOML schema, patch -> Session building and live reload.

    from livernn.patch import load_patch, apply_patch, Show, open_show
"""

from livernn.patch.apply import apply_patch
from livernn.patch.schema import Patch, PatchError, load_patch
from livernn.patch.show import Show, open_show

__all__ = ["Patch", "PatchError", "Show", "apply_patch", "load_patch", "open_show"]
