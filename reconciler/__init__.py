"""rpki-reconciler: a declarative RPKI Certificate Authority (YAML desired state, plan, apply)."""

#: The one place the version is written (``pyproject.toml`` reads it): a plan records it, and reading it
#: from the installed metadata instead costs every command ``importlib.metadata``'s import.
__version__ = "0.1.0"
