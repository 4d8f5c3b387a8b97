"""Renderers of a plan document: text for terminals and logs, Markdown for pull requests. JSON is the
document itself (``reconciler.plan.document.dumps``)."""
