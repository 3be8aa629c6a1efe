"""The note model: training network, checkpoint I/O and the real-time generator.

The engine uses only this surface (docs/ARCHITECTURE.md)::

    m = load_model(path); g = m.generator(seed); g.reset(); g.prime(notes); g.warmup()
    pitch, step_s, dur_s, vel = g.next(SamplerParams(...)); g.observe(...)
"""

from livernn.model.checkpoint import ModelError
from livernn.model.config import ModelConfig
from livernn.model.generator import LoadedModel, NoteGenerator, default_model_path, load_model
from livernn.model.sampling import SCALES, SamplerParams

__all__ = [
    "SCALES",
    "LoadedModel",
    "ModelConfig",
    "ModelError",
    "NoteGenerator",
    "SamplerParams",
    "default_model_path",
    "load_model",
]
