"""The command line: thin. Parse, build the Session, call one operation, print."""

from plano.cli.main import main

__all__ = ["main"]
