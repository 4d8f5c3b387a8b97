"""``python -m reconciler`` runs rpkictl."""

from reconciler.entry import main

main()
