"""Models and patches by name: the shipped ones, the user's, a patch's own.

A performer types ``swap(v, "folk")`` or ``livernn perform demo``, not a path into the
package. Names are looked up on one search path, in this order:

1. the shipped models (``models/`` in a checkout; packed into the wheel as
   ``livernn/_shipped/models`` by setup.py, found with importlib.resources),
2. the user's folder: ``$LIVERNN_MODELS`` (one or more folders, ``os.pathsep``
   separated), else ``models/`` in the platform's user data folder (platformdirs:
   ``~/.local/share/livernn/models`` on Linux, ``~/Library/Application Support/...`` on
   macOS, ``%LOCALAPPDATA%\\livernn\\...`` on Windows),
3. the patch's folder (``<patch folder>/models/NAME``), when a patch names the model,
4. then the name as a path (relative to the patch's folder, confined to it, for a patch;
   relative to the current folder at the prompt and on the command line).

Patches follow the same idea: an existing file, else ``NAME.toml`` among the shipped
patches, then in ``$LIVERNN_PATCHES`` or the user data folder's ``patches/``.

Why the shipped folders are looked for in two places: a wheel carries them inside the
package, while a checkout (and an editable install) keeps them at the top level where
training writes them. The checkout's folders count only beside a ``pyproject.toml``
naming livernn, so an installed package never mistakes some ``site-packages/models``
for its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
CARD = "README.md"


def shipped(kind: str) -> Path:
    """The shipped ``models`` or ``patches`` folder (inside the wheel, or the checkout's)."""
    package = Path(str(resources.files("livernn")))
    packed = package / "_shipped" / kind
    if packed.is_dir():
        return packed
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / kind).is_dir():
        return checkout / kind
    return packed  # absent: lookups find nothing there and say which names exist


def user_folders(kind: str) -> list[Path]:
    """The user's own folders for ``models`` or ``patches`` (env var, else user data folder)."""
    env = os.environ.get(f"LIVERNN_{kind.upper()}", "")
    if env.strip():
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    import platformdirs

    return [platformdirs.user_data_path("livernn") / kind]


def model_folders(patch_folder: Path | None = None) -> list[Path]:
    """Where model names are looked up, in order (see the module docstring)."""
    folders = [shipped("models"), *user_folders("models")]
    if patch_folder is not None:
        folders.append(Path(patch_folder) / "models")
    return folders


def _is_model(path: Path) -> bool:
    from livernn.model.checkpoint import CONFIG_FILE

    return (path / CONFIG_FILE).is_file()


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    where: str  # "shipped", "user" or "patch"

    @property
    def summary(self) -> str:
        return card_summary(self.path)


def models(patch_folder: Path | None = None) -> list[ModelEntry]:
    """Every model reachable by name; a name found twice is the first folder's (as lookup)."""
    found: dict[str, ModelEntry] = {}
    wheres = ["shipped"] + ["user"] * (len(model_folders()) - 1) + ["patch"]
    for folder, where in zip(model_folders(patch_folder), wheres):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name not in found and NAME.match(entry.name) and _is_model(entry):
                found[entry.name] = ModelEntry(entry.name, entry, where)
    return list(found.values())


def model_names(patch_folder: Path | None = None) -> list[str]:
    return [m.name for m in models(patch_folder)]


def card_summary(model_dir: Path) -> str:
    """The model card's one-line summary: its title, less a leading ``models/NAME —``."""
    try:
        with open(Path(model_dir) / CARD, encoding="utf-8") as f:
            lines = [f.readline() for _ in range(20)]
    except (OSError, UnicodeDecodeError):
        return "(no model card)"
    for line in lines:
        if line.startswith("# "):
            title = line[2:].strip()
            _, dash, rest = title.partition(" — ")
            return rest.strip() if dash and rest.strip() else title
    return "(model card has no title)"


def find_model(spec: str | os.PathLike[str], patch_folder: Path | None = None, known=()) -> Path:
    """A model directory for a name (the search path) or a path.

    A ``Path`` (or a string with a path separator) is a path as given; a bare name is
    looked up on the search path, then tried as a path. With ``patch_folder``, the path
    must stay inside that folder: a patch cannot reach into the rest of the disk.
    ``known`` adds names (a patch's own) to the "did you mean" of an unknown name.
    """
    from livernn.errors import unknown
    from livernn.model.checkpoint import ModelError

    text = os.fspath(spec)
    is_name = isinstance(spec, str) and NAME.match(text) is not None
    if is_name:
        own = Path(patch_folder) / "models" if patch_folder is not None else None
        for folder in model_folders(patch_folder):
            candidate = folder / text
            if _is_model(candidate):
                if folder == own and not _inside(candidate, folder):  # a symlink out of models/
                    raise ModelError(f"model {text!r} leads outside {folder}; refused")
                return candidate
    base = Path(patch_folder) if patch_folder is not None else Path.cwd()
    path = base / Path(text).expanduser()
    if patch_folder is not None and not _inside(path, Path(patch_folder)):
        raise ModelError(f"model {text!r} leads outside the patch's folder {patch_folder}; refused")
    if path.exists():
        return path
    if is_name:
        raise ModelError(str(unknown("model", text, {*known, *model_names(patch_folder)})))
    raise ModelError(f"{path}: no such model (give a model name, see `livernn models`, "
                     "or a directory with model.safetensors and config.json)")


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def patch_folders() -> list[Path]:
    return [shipped("patches"), *user_folders("patches")]


def patch_names() -> list[str]:
    names: dict[str, None] = {}
    for folder in patch_folders():
        if folder.is_dir():
            names.update((p.stem, None) for p in sorted(folder.glob("*.toml")))
    return list(names)


def find_patch(spec: str | os.PathLike[str]) -> Path:
    """A patch file: an existing file as given, else a shipped or user patch by name."""
    from livernn.errors import LivernnError, unknown

    path = Path(spec).expanduser()
    if path.is_file():
        return path
    text = os.fspath(spec)
    name = text.removesuffix(".toml")
    if NAME.match(name) and "/" not in text and os.sep not in text:
        for folder in patch_folders():
            if (folder / f"{name}.toml").is_file():
                return folder / f"{name}.toml"
        raise LivernnError(str(unknown("patch", name, patch_names())))
    if path.is_dir():  # `livernn perform patches/`: say which files are there
        found = sorted(p.name for p in path.glob("*.toml"))
        listed = ", ".join(found[:8]) + (", …" if len(found) > 8 else "")
        raise LivernnError(f"{path}: a folder, not a patch file" + (f"; it has {listed}" if found else ""))
    raise LivernnError(f"{path}: no such patch file")


def is_packed(path: Path) -> bool:
    """Whether ``path`` lies inside the installed package's shipped folders (read-only:
    what a shipped patch writes goes to the current folder instead)."""
    packed = Path(str(resources.files("livernn"))) / "_shipped"
    return packed.is_dir() and _inside(path, packed)
