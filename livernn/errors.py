"""One exception type for everything a user can get wrong.

The CLI, the REPL and the patch loader print a ``LivernnError`` as one line and keep
going; anything else is a bug and gets a traceback.
"""


from __future__ import annotations


class LivernnError(Exception):
    """A problem with the user's input (file, value, port, patch): shown as one line."""


def nearest(name: str, choices) -> str | None:
    """The valid name a typo most likely meant (difflib's ratio, as Python's own
    "did you mean" does), or None when nothing is close."""
    import difflib

    found = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


def shown(value) -> str:
    """``repr(value)`` short enough for a one-line error: a 400-digit integer typed at the
    prompt (``bars=10**400``) reads ``1000000000...00000000000``, a long string is cut in the
    middle, and an integer past Python's digit limit (``repr`` itself raises) is named."""
    import reprlib

    short = reprlib.Repr()
    short.maxlong, short.maxstring, short.maxother = 24, 80, 80
    try:
        return short.repr(value)
    except ValueError:  # int max str digits: 10**5000
        return "an integer too long to print"


def unknown(what: str, name: str, choices) -> LivernnError:
    """``no parameter 'temprature'; did you mean 'temperature'?`` (or the valid names when
    none is close): one error shape for every name a performer can mistype."""
    choices = sorted(str(c) for c in choices)
    guess = nearest(name, choices) if isinstance(name, str) else None
    if guess is not None:
        return LivernnError(f"no {what} {shown(name)}; did you mean {guess!r}?")
    listed = ", ".join(choices[:12]) + (", …" if len(choices) > 12 else "")
    return LivernnError(f"no {what} {shown(name)}; valid: {listed or 'none'}")


def kind_of(value) -> str:
    """What a value is, in the words of an error message (``must be a number, got a string``)."""
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def require_extra(module: str, what: str, extra: str):
    """Import ``module`` (a package of the optional extra ``extra``) for ``what``, or raise
    the one-line ``LivernnError`` that names the extra to install: ``hand tracking needs
    mediapipe, which is not installed here (...); install it with: pip install
    'livernn[gesture]'``. The web, gesture and Link extras all load this way, when used."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise LivernnError(f"{what} needs {module.split('.')[0]}, which is not installed here ({exc}); "
                           f"install it with: pip install 'livernn[{extra}]'") from None
