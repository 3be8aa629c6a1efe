"""One exception type for everything a user can get wrong.

The CLI, the REPL and the patch loader print a ``LivernnError`` as one line and keep
going; anything else is a bug and gets a traceback.
"""


class LivernnError(Exception):
    """A problem with the user's input (file, value, port, patch): shown as one line."""
