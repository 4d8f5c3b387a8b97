"""``rpkictl status``: the report (model), how it is collected, and its renderings."""
