"""The performer's REPL: an async prompt over the running engine (see app.py)."""
