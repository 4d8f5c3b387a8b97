"""Which desired-state directory a path means, found the way Git finds a work tree.

An operator at 3 a.m. is as likely to be in ``cas/members/`` as in the directory holding ``rpki.yaml``,
or to pass ``rpki.yaml`` itself. Each of those means the same desired state, so every command asks
:func:`desired_root` first: the path itself when it holds ``rpki.yaml``, the directory of a file
inside it, else the nearest directory above that holds one (a directory holding ``cas/`` but no
``rpki.yaml`` is taken as it is, so that the loader says what it lacks). Only when none does is the path
wrong, and then the message says which absolute path was searched and how to point at the right one.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.diagnostics import DesiredStateError, Diagnostic

#: The file that marks a desired-state directory (the loader reads it first).
MARKER = "rpki.yaml"
#: The directory of CA files beside it: a directory holding one is a desired state missing its rpki.yaml.
CAS_DIR = "cas"


def desired_root(path: Path) -> Path:
    """The absolute desired-state directory ``path`` lies in (``path`` may be the directory, a directory
    below it, or a file in either). Raises :class:`DesiredStateError` when ``path`` does not exist or no
    directory from it up to ``/`` holds ``rpki.yaml``."""
    start = Path(path).expanduser().absolute()
    if not start.exists():
        raise DesiredStateError(
            [
                Diagnostic(
                    start,
                    1,
                    1,
                    f"the desired-state directory {start} does not exist",
                    "check the path: give the directory holding rpki.yaml and cas/, or any path below it",
                )
            ]
        )
    here = start if start.is_dir() else start.parent
    for directory in (here, *here.parents):
        if (directory / MARKER).is_file():
            return directory.resolve()
        if directory == here and (directory / CAS_DIR).is_dir():
            return directory.resolve()  # a desired state without its rpki.yaml: the loader says so
    raise DesiredStateError(
        [
            Diagnostic(
                here / MARKER,
                1,
                1,
                f"no {MARKER} in {here} nor in any directory above it, so this is not a desired state",
                "run rpkictl in the desired-state directory, the one holding rpki.yaml and cas/, or below "
                "it; or give its path, e.g. 'rpkictl plan /srv/rpki/state'; to start a new one, see "
                "docs/getting-started.md",
            )
        ]
    )
