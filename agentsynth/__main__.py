"""``python -m agentsynth`` runs the CLI."""

from .cli import main

main()
