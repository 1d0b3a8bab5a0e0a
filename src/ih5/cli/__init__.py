"""The ``ih5`` command line: thin commands over the library, one error boundary."""

from ih5.cli._app import cli, main

__all__ = ["cli", "main"]
