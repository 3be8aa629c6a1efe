"""Subcommands of ``livernn``; each module has ``register(subparsers)`` (see cli.py)."""
