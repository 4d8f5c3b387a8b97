"""``python -m reconciler`` runs rpkictl."""

from reconciler.cli import main

main()
