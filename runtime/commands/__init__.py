"""Subcommand modules of the `holevision` CLI (standard-library imports only at import time)."""
