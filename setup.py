"""Packs the top-level ``models/`` and ``patches/`` into the wheel as ``livernn/_shipped/``.

All metadata is in pyproject.toml. This file exists for one step setuptools cannot say
declaratively: package data that lives outside the package. The folders stay at the top
of the checkout (training writes models there, patches name them as ``../models/...``);
``livernn.library`` finds them in either place. An editable install skips the copy and
reads the checkout's folders directly.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What a player needs: the weights, the config, and the card (`livernn models` shows its
# title). Training curves and sample renders stay in the repository.
SHIPPED = {"models": ("*/README.md", "*/config.json", "*/model.safetensors"), "patches": ("*.toml",)}


class BuildPyWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "livernn" / "_shipped"
        shutil.rmtree(target, ignore_errors=True)  # a stale copy must not outlive a deleted model
        for folder, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted((ROOT / folder).glob(pattern)):
                    dst = target / src.relative_to(ROOT)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)


setup(cmdclass={"build_py": BuildPyWithShipped})
