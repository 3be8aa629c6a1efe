"""MIDI folders and corpora -> cached note arrays, file-level splits, windows, augmentation."""

from livernn.data.augment import Augment
from livernn.data.cache import DataWarning, LoadReport, load_notes
from livernn.data.split import SPLITS, SplitFiles, find_midi_files, group_versions, split_files, split_of
from livernn.data.windows import WindowSet, epoch_batches, length_batches, pad_pieces

__all__ = ["SPLITS", "Augment", "DataWarning", "LoadReport", "SplitFiles", "WindowSet", "epoch_batches",
           "find_midi_files", "group_versions", "length_batches", "load_notes", "pad_pieces", "split_files",
           "split_of"]
