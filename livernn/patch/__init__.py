"""Patch files: the TOML schema, patch -> Session building and live reload.

    from livernn.patch import load_patch, apply_patch, Show
"""

from livernn.patch.apply import apply_patch
from livernn.patch.schema import Patch, PatchError, load_patch
from livernn.patch.show import Show

__all__ = ["Patch", "PatchError", "Show", "apply_patch", "load_patch"]
