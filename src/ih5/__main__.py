"""``python -m ih5`` runs the command line."""

from ih5.cli import main

main()
