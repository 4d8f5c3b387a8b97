"""Read the desired-state directory into a checked :class:`DesiredState`, or explain everything wrong with it.

The loader never stops at the first problem: it reads every file, shape-checks each one with the pydantic
models in ``schema.py``, runs the cross-file rules in ``checks.py`` on whatever loaded, and only then
raises one :class:`DesiredStateError` carrying all diagnostics. Every YAML node keeps the line and column
it came from, which is what lets every message point at a line and column instead of at a Python
traceback.

Files are read with libyaml (ruamel.yaml.clib) when it is installed: a CA with thousands of ROA entries
then loads in a fraction of the time ruamel's pure-Python round-trip loader takes. The round-trip loader
stays the reference: whatever libyaml might read differently (tabs, tags, directives, text over several
lines...) and whatever fails to parse is handed to it, so that results and every error message are the
same either way.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import math
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.parser import ParserError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scanner import ScannerError

try:
    from _ruamel_yaml import CParser  # libyaml, from ruamel.yaml.clib
except ImportError:  # pragma: no cover - a pure-Python install
    CParser = None

from reconciler import cachefile, layout
from reconciler.desired import CacheKey, guards, oobfiles, parse_cache, routerkeys, yaml_errors
from reconciler.desired.checks import (
    BrokenCa,
    CaDoc,
    Loc,
    SettingsDoc,
    Source,
    check_cas,
    check_settings,
    order_cas,
    resolve_path,
)
from reconciler.desired.model import (
    AspaIntent,
    CaIntent,
    DesiredState,
    ExternalChild,
    Pkcs11SignerConfig,
    Publication,
    Publisher,
    PublisherQuota,
    RemoteRepository,
    RoaGrouping,
    RoaIntent,
    RouterIntent,
    SafetyPolicy,
    Serve,
    SignerConfig,
    SourceLocation,
    Timing,
    UpstreamParent,
)
from reconciler.desired.schema import (
    CA_NAME_RE,
    UNION_TAGS,
    CaFile,
    ExternalChildEntry,
    RouterEntry,
    RpkiFile,
    SignerSection,
    describe,
    quote_hint,
)
from reconciler.diagnostics import DesiredStateError, Diagnostic, display_path, split_hint
from reconciler.fsutil import read_bytes
from reconciler.resources import AsnSet, Resources

if typing.TYPE_CHECKING:
    from reconciler.protocol.oob import ChildRequest, ParentResponse, PublisherRequest, RepositoryResponse

SETTINGS_FILE = "rpki.yaml"
CAS_DIR = "cas"

M = TypeVar("M", bound=BaseModel)


def _c_parser_available() -> bool:
    """Whether ruamel.yaml.clib's libyaml binding imports; without it ``pure=False`` silently means pure."""
    try:
        importlib.import_module("_ruamel_yaml")
    except ImportError:
        return False
    return True


#: Read files with libyaml first. Off without ruamel.yaml.clib, and in tests that compare the two paths.
FAST_PARSE = _c_parser_available()

#: Deeper nesting is left to the round-trip loader: no desired state needs more than a handful of levels,
#: and the values are built recursively.
_FAST_MAX_DEPTH = 64

#: Characters the two parsers disagree on: libyaml takes ``key:<tab>value``, which ruamel refuses; it counts
#: NEL, LS and PS as line breaks (YAML 1.1) where ruamel does not; and it counts a byte order mark inside
#: the text as a column, which ruamel does not.
_UNEVEN_CHARACTERS = re.compile("[\t\x85\u2028\u2029\ufeff]")
#: An anchor or alias name run into one of these: libyaml ends the name there (``&a:`` is anchor ``a``
#: on an empty key), ruamel reads on (anchor ``a:``).
_UNEVEN_ANCHOR = re.compile(r"[&*][0-9A-Za-z_-]+[?:%@`]")
#: A JSON-style key with the colon right after it (``["a":b]``): libyaml reads a one-pair mapping in a flow
#: sequence, ruamel a syntax error.
_UNEVEN_COLON = re.compile(r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[\]}]) *:\S""")

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_BOOLEANS = {"true": True, "false": False}
#: One NaN object, as in ruamel: two ``.nan`` keys are then the same key (a duplicate) on both paths.
_NAN = float("nan")


class YamlSource:
    """A parsed YAML file: its path, its node tree and its content, able to turn a key path into a position.

    The tree is libyaml's node tree (``MappingNode``...) when the file came through the fast path, or the
    round-trip loader's ``CommentedMap``/``CommentedSeq`` when it did not; both know where each key and value
    was. ``content`` is the fast path's plain Python value; round-trip data is converted only when asked.
    """

    def __init__(self, path: Path, root: Any, content: Any = None) -> None:
        self._path = path
        self.root = root
        self._content = content
        self._walked: dict[tuple[str | int, ...], tuple[int, int, Any, bool]] = {}
        self.asked: dict[parse_cache.Where, tuple[int, int]] = {}  # every position asked for, remembered

    @property
    def path(self) -> Path:
        return self._path

    @property
    def empty(self) -> bool:
        """No document, or one that is only ``~`` (the fast path takes only files holding a mapping)."""
        return self.root is None

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.root, MappingNode | CommentedMap)

    def plain(self) -> Any:
        """The content as plain Python values for pydantic; see :func:`_plain` for what it may raise."""
        return self._content if isinstance(self.root, Node) else _plain(self.root)

    def top_level(self) -> Mapping[Any, Any]:
        """The top-level mapping as read, unvalidated and unconverted, or an empty one."""
        if isinstance(self.root, CommentedMap):
            return self.root
        return typing.cast(dict[str, Any], self._content) if isinstance(self.root, MappingNode) else {}

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``loc`` (or of its key), or of the nearest parent (see
        :meth:`_position`)."""
        where = (tuple(loc), key)
        found = self.asked.get(where)
        if found is None:
            found = self.asked[where] = self._position(loc, key=key)
        return found

    def _position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``loc`` (or of its key), or of the nearest parent.

        Walking stops where the YAML stops matching ``loc`` -- a missing key, a scalar where a list was
        expected, a key that came in through a ``<<:`` merge and so has no position of its own -- so
        that errors about absent things point at the enclosing key.
        """
        if not loc:
            line, column = _start(self.root)
            return line + 1, column + 1
        line, column, node, found = self._walk(tuple(loc[:-1]))
        if found:
            step = _step(node, loc[-1], key=key)
            if step is not None:
                (line, column), _ = step
        return line + 1, column + 1

    def _walk(self, loc: tuple[str | int, ...]) -> tuple[int, int, Any, bool]:
        """The 0-based position and node at ``loc``, and whether the YAML matched all of it; remembered,
        so that locating each of thousands of ROA entries walks down to their list only once."""
        if loc in self._walked:
            return self._walked[loc]
        if not loc:
            line, column = _start(self.root)
            found = (line, column, self.root, True)
        else:
            line, column, node, matched = self._walk(loc[:-1])
            step = _step(node, loc[-1], key=False) if matched else None
            found = (line, column, node, False) if step is None else (*step[0], step[1], True)
        self._walked[loc] = found
        return found


class _RememberedSource(YamlSource):
    """A file whose very bytes the libyaml path read before (see ``parse_cache``), or read just now
    straight from its events (see :class:`_Direct`): its values, the positions asked for then, and those
    found while reading it. Parsed again, through the node tree, only when asked for another position."""

    def __init__(
        self,
        path: Path,
        text: str,
        parsed: parse_cache.Parsed,
        known: dict[parse_cache.Where, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__(path, None, parsed.content)
        self.asked = parsed.positions  # shared: a position found now is remembered with the rest
        # Positions found while reading, handed out when asked: only those asked are remembered (the
        # parse cache's rows of a registry's 20,000 files are read on every plan).
        self._known = known or {}
        self._text = text
        self._parsed: YamlSource | None = None

    @property
    def empty(self) -> bool:
        return False

    @property
    def is_mapping(self) -> bool:
        return True

    def plain(self) -> Any:
        return self._content

    def top_level(self) -> Mapping[Any, Any]:
        return typing.cast(dict[str, Any], self._content)

    def _position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        known = self._known.get((tuple(loc), key))
        if known is not None:
            return known
        if self._parsed is None:
            self._parsed = _read_fast(self.path, self._text, nodes=True) or YamlSource(
                self.path, YAML(typ="rt").load(self._text)
            )
        return self._parsed.position(loc, key=key)


def _step(node: Any, part: str | int, *, key: bool) -> tuple[tuple[int, int], Any] | None:
    """One level down from ``node``: the 0-based position of ``part`` and the child node, if any."""
    if isinstance(node, MappingNode):
        pair = _find_pair(node, part)
        if pair is None:
            return None
        key_node, value_node = pair
        # An empty value has no position of its own (ruamel puts it on the next line): use the key.
        at = key_node if key or _is_null(value_node) else value_node
        return (at.start_mark.line, at.start_mark.column), value_node
    if isinstance(node, SequenceNode):
        if isinstance(part, int) and 0 <= part < len(node.value):
            item = node.value[part]
            return (item.start_mark.line, item.start_mark.column), item
        return None
    return _step_round_trip(node, part, key=key)


def _step_round_trip(node: Any, part: str | int, *, key: bool) -> tuple[tuple[int, int], Any] | None:
    """:func:`_step` in the round-trip loader's data, which keeps positions in each collection's ``.lc``."""
    try:
        if isinstance(node, CommentedMap):
            found = _find_key(node, part)
            if found is None:
                return None
            yaml_key, child = found
            # As above: an empty value is located at its key.
            at = node.lc.key(yaml_key) if key or child is None else node.lc.value(yaml_key)
            return (at[0], at[1]), child
        if isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            at = node.lc.item(part)
            return (at[0], at[1]), node[part]
    except (KeyError, IndexError, TypeError):  # merged keys and aliases may lack line/column data
        return None
    return None


def _start(node: Any) -> tuple[int, int]:
    """0-based start of a collection node; a file whose top level is a scalar starts at the top."""
    if isinstance(node, MappingNode | SequenceNode):
        return node.start_mark.line, node.start_mark.column
    if isinstance(node, CommentedMap | CommentedSeq):
        return node.lc.line, node.lc.col
    return 0, 0


def _matches(yaml_key: Any, part: str | int) -> bool:
    """Whether a YAML key is the pydantic loc part (keys were turned into strings for validation)."""
    return bool(yaml_key == part or str(yaml_key) == str(part))


def _find_key(mapping: CommentedMap, part: str | int) -> tuple[Any, Any] | None:
    """The round-trip key matching a pydantic loc part, and its value."""
    for yaml_key, value in mapping.items():
        if _matches(yaml_key, part):
            return yaml_key, value
    return None


def _find_pair(mapping: MappingNode, part: str | int) -> tuple[Node, Node] | None:
    """The key and value nodes matching a pydantic loc part, among the mapping's own keys.

    Keys merged in with ``<<:`` are not among them, so the walk stops at the mapping, as it does in the
    round-trip data, where merged keys have no position.
    """
    for key_node, value_node in mapping.value:
        if key_node.tag != _MERGE and _matches(_key(key_node), part):
            return key_node, value_node
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


# --- reading --------------------------------------------------------------------------------------------


@dataclass
class _Files:
    """Everything read so far: bytes for the digest, diagnostics for the final report."""

    root: Path
    contents: dict[str, bytes]
    problems: list[Diagnostic]
    cache: parse_cache.ParseCache | None = None
    _fresh: dict[str, tuple[str, YamlSource]] = field(default_factory=dict)  # read with libyaml now
    _digests: dict[str, str] = field(default_factory=dict)  # every file read with libyaml or remembered
    _keep: set[str] = field(default_factory=set)  # files that passed their shape check
    _aliased: set[str] = field(default_factory=set)  # files that use YAML aliases

    def remember(self) -> None:
        """Tell the cache what the files read now parsed to (remembered files' rows hold every position
        asked for since: they share it).

        Only files that passed their shape check are remembered, and none that uses aliases: the cache
        holds parsed desired state and nothing more -- never the text of a file that is not desired
        state at all, nor the expansion of aliases."""
        if self.cache is None:
            return
        for relative, digest in self._digests.items():
            if relative not in self._keep or relative in self._aliased:
                self.cache.forget(digest)
            elif relative in self._fresh:
                _, source = self._fresh[relative]
                self.cache.put(digest, parse_cache.Parsed(source.plain(), source.asked))

    def passed(self, source: YamlSource) -> None:
        """``source`` passed its shape check: what it parsed to may be remembered."""
        self._keep.add(source.path.relative_to(self.root).as_posix())

    def settled(self, source: YamlSource, wanted: Iterable[tuple[Loc, bool]]) -> YamlSource:
        """``source`` as if remembered by the parse cache, once the positions ``wanted`` (``(loc, key)``)
        are found: its values and those positions, without libyaml's node tree, which is read again only
        if another position is asked for (a diagnostic). A registry's thousands of CA files were all held
        as node trees until the end of the load -- most of its memory at the time."""
        if not isinstance(source.root, Node):
            return source  # remembered or read without nodes, or read by the round-trip loader (kept whole)
        for loc, key in wanted:
            source.position(loc, key=key)
        relative = source.path.relative_to(self.root).as_posix()
        digest, _ = self._fresh[relative]
        text = self.contents[relative].decode("utf-8-sig")
        settled = _RememberedSource(source.path, text, parse_cache.Parsed(source.plain(), source.asked))
        self._fresh[relative] = (digest, settled)
        return settled

    def read(self, path: Path) -> YamlSource | None:
        """Read and parse one file, recording its bytes and any problem; None if it cannot be used.

        Only regular files inside the repository are read (see ``guards``): a link to a key or a system
        file is reported, never read."""
        real = guards.readable(self.root, path)
        if isinstance(real, Diagnostic):
            self.problems.append(real)
            return None
        try:
            raw = read_bytes(str(real))  # thousands of files: system calls only, as for published ones
        except OSError as exc:
            self.problems.append(Diagnostic(path, 1, 1, f"cannot read this file: {exc.strerror}"))
            return None
        relative = path.relative_to(self.root).as_posix()
        self.contents[relative] = raw
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line, column = _line_col(raw[: exc.start].decode("utf-8", "replace"))
            self.problems.append(
                Diagnostic(path, line, column, "this file is not UTF-8 text", "save it as UTF-8")
            )
            return None
        digest = hashlib.sha256(raw).hexdigest() if FAST_PARSE else None
        parsed = self.cache.get(digest) if self.cache is not None and digest is not None else None
        if digest is not None and parsed is not None:  # remembered: it passed every guard when it was read
            self._digests[relative] = digest
            return _RememberedSource(path, text, parsed)
        scanned = guards.may_alias(text)
        if scanned and not self._scan(path, text):
            return None
        if digest is None:
            return self._read_round_trip(path, text, scanned=scanned)
        self._digests[relative] = digest
        source = _read_fast(path, text)
        if source is None:
            return self._read_round_trip(path, text, scanned=scanned)
        self._fresh[relative] = (digest, source)
        return source

    def _scan(self, path: Path, text: str) -> bool:
        """Count the file's nesting and what its aliases add (see ``guards.scan``); False, with the
        problem recorded, when either is beyond its limit. Done before anything is built from a file
        that may hold aliases, and before the round-trip loader, whose time grows with the square of
        the nesting, reads any file (the fast path stops at its own depth)."""
        uneven = not FAST_PARSE or any(
            p.search(text) for p in (_UNEVEN_CHARACTERS, _UNEVEN_ANCHOR, _UNEVEN_COLON)
        )
        aliased, problem = guards.scan(path, text, pure=uneven)
        if aliased:
            self._aliased.add(path.relative_to(self.root).as_posix())
        if problem is not None:
            self.problems.append(problem)
            return False
        return True

    def _read_round_trip(self, path: Path, text: str, *, scanned: bool) -> YamlSource | None:
        """Parse with ruamel's round-trip loader, whose errors are the ones the operator is shown."""
        if not scanned and not self._scan(path, text):
            return None
        try:
            root = YAML(typ="rt").load(text)
        except YAMLError as exc:
            self.problems.append(_yaml_problem(path, text, exc))
            return None
        except RecursionError:
            self.problems.append(Diagnostic(path, 1, 1, "this YAML is nested too deeply to read"))
            return None
        except Exception as exc:
            # ruamel raises plain Python errors (ValueError, KeyError, IndexError...) for explicit tags it
            # cannot apply, e.g. "!!int abc", or for a stray "? " that makes a list or mapping a key; the
            # operator needs a pointer to the line, not a traceback.
            explained = _explained(path, text, None)
            if explained is not None:
                self.problems.append(explained)
                return None
            self.problems.append(
                Diagnostic(
                    path,
                    1,
                    1,
                    f"YAML error: {type(exc).__name__}: {exc}",
                    "check explicit tags such as !!int or !!bool",
                )
            )
            return None
        return YamlSource(path, root)


def _line_col(text_before: str) -> tuple[int, int]:
    """1-based line and column just after ``text_before``."""
    line = text_before.count("\n") + 1
    column = len(text_before) - (text_before.rfind("\n") + 1) + 1
    return line, column


def _explained(path: Path, text: str, stopped_at: int | None) -> Diagnostic | None:
    """An indentation mistake in words, at the line to change (see ``yaml_errors``), if one is found no
    later than the 1-based line ``stopped_at`` where the parser gave up (any line when None)."""
    found = yaml_errors.explain(text)
    if found is None or (stopped_at is not None and found.line > stopped_at):
        return None
    return Diagnostic(path, found.line, found.column, found.message, found.hint)


def _yaml_problem(path: Path, text: str, exc: YAMLError) -> Diagnostic:
    """Turn a ruamel parse error into a diagnostic: an indentation mistake said in words at the line to
    change when one explains the error, else ruamel's own words at the spot it blames."""
    if isinstance(exc, ScannerError | ParserError) and exc.problem_mark is not None:
        explained = _explained(path, text, exc.problem_mark.line + 1)
        if explained is not None:
            return explained
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "cannot parse this"
        meaning = yaml_errors.words(problem)
        if meaning is not None:
            hint: str | None = "check the indentation of this line against the lines above it"
            if exc.context_mark is not None:
                hint = f"{hint}, from line {exc.context_mark.line + 1}"
            return Diagnostic(path, mark.line + 1, mark.column + 1, f"YAML syntax error: {meaning}", hint)
        if isinstance(exc, DuplicateKeyError):
            hint = "each key may appear only once in a mapping; remove or merge one"
        elif "'\\t'" in problem:
            hint = "indent with spaces; YAML does not allow tabs"
        elif exc.context and exc.context_mark is not None:
            where = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
            hint = f"{exc.context} that starts at {where}"
        else:
            hint = exc.context
        return Diagnostic(path, mark.line + 1, mark.column + 1, f"YAML syntax error: {problem}", hint)
    if isinstance(exc, ReaderError):
        line, column = _line_col(text[: exc.position])
        return Diagnostic(path, line, column, f"YAML syntax error: {exc.reason}", "remove the character")
    return Diagnostic(path, 1, 1, f"YAML syntax error: {exc}")


class _RecursiveYamlError(ValueError):
    """An alias that refers to a node containing itself (``a: &a [*a]``)."""


def _plain(node: Any, parents: tuple[int, ...] = ()) -> Any:
    """ruamel's comment-carrying types as plain Python values, so strict pydantic types accept them.

    Keys become strings (pydantic reports an odd key such as ``1:`` as unknown rather than crashing);
    ruamel's ``ScalarBoolean`` is an ``int`` subclass, so booleans are tested before integers.
    """
    if isinstance(node, dict | list):
        if id(node) in parents:
            raise _RecursiveYamlError
        inner = (*parents, id(node))
        if isinstance(node, dict):
            return {str(key): _plain(value, inner) for key, value in node.items()}
        return [_plain(item, inner) for item in node]
    if isinstance(node, bool) or type(node).__name__ == "ScalarBoolean":
        return bool(node)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


# --- the fast path: libyaml -----------------------------------------------------------------------------


class _RoundTripOnlyError(Exception):
    """Something the fast path does not reproduce exactly; the round-trip loader reads the file instead."""


def _read_fast(path: Path, text: str, *, nodes: bool = False) -> YamlSource | None:
    """The file read with libyaml, or None to leave it to the round-trip loader.

    Its values come straight from libyaml's events where :class:`_Direct` can take the file, otherwise
    (or with ``nodes``: positions beyond those it records are wanted) through libyaml's node tree.

    That includes every file libyaml cannot parse: the round-trip loader then words the error, so messages
    and positions do not depend on which parser is installed. A file that is not a mapping is an error
    whatever it holds, and is left to it too.
    """
    try:
        if any(pattern.search(text) for pattern in (_UNEVEN_CHARACTERS, _UNEVEN_ANCHOR, _UNEVEN_COLON)):
            return None
        if not nodes:
            try:
                return _read_direct(path, text)
            except _NodesNeededError:
                pass  # the node path reads it
        root = _compose(text)
        if not isinstance(root, MappingNode):
            return None
        return YamlSource(path, root, _NodeValues().value(root))
    except Exception:  # anything at all: the round-trip loader decides what it means
        return None


class _Yaml12Resolver(VersionedResolver):
    """ruamel's resolver, told the YAML version once: by default it looks for a ``%YAML`` directive on
    every scalar, through an attribute libyaml's parser lacks, and the exception that raises each time
    costs more than the rest of the resolving. Files with a directive never take the fast path."""

    @property
    def processing_version(self) -> Any:
        return (1, 2)

    _table: Any = None  # the YAML 1.2 resolvers: the same for every file, so built once

    @property
    def versioned_resolver(self) -> Any:
        """The YAML 1.2 resolvers, built once rather than once per file and looked up once per scalar."""
        if _Yaml12Resolver._table is None:
            _Yaml12Resolver._table = VersionedResolver.versioned_resolver.fget(self)  # type: ignore[attr-defined]
        return _Yaml12Resolver._table


class _LibyamlParser(CParser or object, _Yaml12Resolver):  # type: ignore[misc]
    """libyaml's parser for one text, its scalars resolved as the round-trip loader's are (YAML 1.2).
    Built directly rather than through ``YAML(typ="safe")``, which per file looks for plug-ins on disk and
    defines a new loader class: a registry's thousands of files paid for that."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        _Yaml12Resolver.__init__(self, loadumper=self)


def _compose(text: str) -> Node | None:
    """The node tree of the text's single document (None when empty), as libyaml's own composer builds
    it, from libyaml's events in one pass.

    Raises :class:`_RoundTripOnlyError` where the nodes are not sure to give what the round-trip loader
    would: a ``%YAML`` or ``%TAG`` directive (the composer ignores the version), explicit tags (ruamel makes
    ``!!str x`` a tagged scalar, and nodes do not say which tags were explicit), anchored booleans (ruamel
    keeps ``&a false`` as an int that is not ``False`` and prints as 0) or deep nesting. libyaml's composer
    is not used: it would parse the text a second time, and it recurses in C, overflowing the stack on
    deep nesting, where its parser does not. Anything libyaml's composer refuses (an undefined alias, a
    reused anchor, a second document) raises too.
    """
    parser = _LibyamlParser(text)
    try:
        return _Composer(parser).document()
    finally:
        parser.dispose()


class _Composer:
    """Nodes from events. Each open collection gathers its children in a list of its own (the bottom one
    gathers the document), and a mapping pairs them up as it closes."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self._anchors: dict[str, Node] = {}
        self._tags: dict[tuple[str, Any], Any] = {}  # one per distinct plain text, resolved once
        self._open: list[Node] = []
        self._children: list[list[Any]] = [[]]  # nodes; a closed mapping's: (key, value) pairs
        self._documents = 0

    def document(self) -> Node | None:
        get, children = self._parser.get_event, self._children
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                children[-1].append(self._scalar(event))
            elif kind is AliasEvent:
                children[-1].append(self._anchors[event.anchor])
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._start(event, MappingNode if kind is MappingStartEvent else SequenceNode)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self._end(event)
            elif kind is DocumentStartEvent:
                self._documents += 1
                if self._documents > 1 or event.version is not None or event.tags:
                    raise _RoundTripOnlyError
            elif kind is StreamEndEvent:
                return children[0][0] if children[0] else None

    def _scalar(self, event: Any) -> ScalarNode:
        if event.tag is not None:
            raise _RoundTripOnlyError
        value, implicit = event.value, event.implicit
        tag = self._tags.get((value, implicit))
        if tag is None:
            tag = self._tags[value, implicit] = self._parser.resolve(ScalarNode, value, implicit)
        node = ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
        if event.anchor is not None:
            if value.lower() in _BOOLEANS:
                raise _RoundTripOnlyError
            self._anchor(event.anchor, node)
        return node

    def _start(self, event: Any, kind: type[MappingNode] | type[SequenceNode]) -> None:
        if event.tag is not None or len(self._open) >= _FAST_MAX_DEPTH:
            raise _RoundTripOnlyError
        tag = self._parser.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        self._anchor(event.anchor, node)  # before its children: an alias among them refers back to it
        self._open.append(node)
        self._children.append(node.value)

    def _end(self, event: Any) -> None:
        node, children = self._open.pop(), self._children.pop()
        if isinstance(node, MappingNode):
            pairs = zip(children[::2], children[1::2], strict=True)
            children[:] = pairs  # the same list object: an alias inside already refers to this node
        node.end_mark = event.end_mark
        self._children[-1].append(node)

    def _anchor(self, anchor: str | None, node: Node) -> None:
        """Register an anchor when its node opens, as libyaml's composer does (:class:`_NodeValues` then
        refuses an alias inside that refers back to it)."""
        if anchor is not None:
            if anchor in self._anchors:  # libyaml's composer refuses a reused anchor
                raise _RoundTripOnlyError
            self._anchors[anchor] = node


class _NodesNeededError(Exception):
    """Something :class:`_Direct` leaves to the node path, which reads it as the round-trip loader would or
    leaves it to that loader: an anchor, an alias, a merge key, a tag, a directive, a second document, a
    key that is a list or empty, a duplicate key, text over several lines, deep nesting."""


_NO_KEY: Any = object()  # a mapping's frame waiting for a key


def _read_direct(path: Path, text: str) -> YamlSource | None:
    """The file's values through :class:`_Direct`, as a source that parses again for positions it did not
    record; None if the file holds no mapping. Raises :class:`_NodesNeededError` for the node path."""
    parser = _LibyamlParser(text)
    try:
        direct = _Direct(parser)
        content = direct.document()
    finally:
        parser.dispose()
    if not isinstance(content, dict):
        return None
    return _RememberedSource(path, text, parse_cache.Parsed(content), direct.positions)


class _Frame:
    """One open collection of :class:`_Direct`: a list, or a mapping as YAML typed its keys with the key
    waiting for its value."""

    __slots__ = ("is_mapping", "items", "key", "key_mark", "start", "where")

    def __init__(self, is_mapping: bool, start: Any, where: str | None) -> None:
        self.items: Any = {} if is_mapping else []
        self.is_mapping = is_mapping
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.start = start
        self.where = where  # a top-level list: its key, under which its items' positions are recorded


class _Direct:
    """Plain values straight from libyaml's events, without the node tree: what :class:`_Composer` and
    :class:`_NodeValues` make of a file, for the files nearly every repository holds (mappings, lists and
    one-line scalars; no anchors, aliases, merges or tags). Building and walking the node tree of the
    5,000-entry file a change is about took twice as long as building these values.

    It records the positions the loader asks for (see ``_located``) as :meth:`YamlSource.position` gives
    them: each top-level key and value, and each item of a top-level list (a CA's name, its ROA entries).
    Anything else raises :class:`_NodesNeededError`, and the node path reads the file.
    """

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self._tags: dict[tuple[str, Any], str] = {}  # one per distinct plain text, resolved once
        self._stack: list[_Frame] = []
        self._root: Any = None
        self._documents = 0
        self.positions: dict[parse_cache.Where, tuple[int, int]] = {}

    def document(self) -> Any:
        """The document's plain values (None when empty)."""
        get = self._parser.get_event
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                self._scalar(event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._start(event, mapping=kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = self._stack.pop()
                items = frame.items
                self._add({str(k): v for k, v in items.items()} if frame.is_mapping else items, frame.start)
            elif kind is DocumentStartEvent:
                self._documents += 1
                if self._documents > 1 or event.version is not None or event.tags:
                    raise _NodesNeededError
            elif kind is AliasEvent:
                raise _NodesNeededError
            elif kind is StreamEndEvent:
                return self._root

    def _scalar(self, event: Any) -> None:
        start = event.start_mark
        if event.tag is not None or event.anchor is not None or event.end_mark.line != start.line:
            raise _NodesNeededError
        text, implicit = event.value, event.implicit
        tag = self._tags.get((text, implicit))
        if tag is None:
            tag = self._tags[text, implicit] = str(self._parser.resolve(ScalarNode, text, implicit))
        stack = self._stack
        if stack and stack[-1].is_mapping and stack[-1].key is _NO_KEY:
            self._key(tag, text, start)
        else:
            self._add(_typed(tag, text), start, null=tag == _NULL, scalar=True)

    def _start(self, event: Any, *, mapping: bool) -> None:
        stack = self._stack
        if event.tag is not None or event.anchor is not None or len(stack) >= _FAST_MAX_DEPTH:
            raise _NodesNeededError
        if stack and stack[-1].is_mapping and stack[-1].key is _NO_KEY:
            raise _NodesNeededError  # a list or a mapping as a key
        if not stack:
            self.positions[(), False] = self.positions[(), True] = _one_based(event.start_mark)
        top_level_list = len(stack) == 1 and stack[0].is_mapping and not mapping
        stack.append(_Frame(mapping, event.start_mark, str(stack[0].key) if top_level_list else None))

    def _key(self, tag: str, text: str, start: Any) -> None:
        frame = self._stack[-1]
        if text == "" or tag == _MERGE:
            raise _NodesNeededError
        key = _typed(tag, text)
        if key in frame.items:
            raise _NodesNeededError  # a duplicate: the round-trip loader words it
        if len(self._stack) == 1:
            name = str(key)
            if any(str(other) == name for other in frame.items):
                raise _NodesNeededError  # 1 and "1": which one a position means is for the node path to say
            self.positions[(name,), True] = _one_based(start)
        frame.key, frame.key_mark = key, start

    def _add(self, value: Any, start: Any, *, null: bool = False, scalar: bool = False) -> None:
        """Put a finished value into the open collection (or make it the document)."""
        if not self._stack:
            self._root = value
            return
        frame = self._stack[-1]
        if not frame.is_mapping:
            if frame.where is not None:
                self.positions[(frame.where, len(frame.items)), False] = _one_based(start)
            frame.items.append(value)
            return
        if scalar and start.line > frame.key_mark.line:
            raise _NodesNeededError  # a value below its key (see _below_its_key)
        if len(self._stack) == 1:
            # An empty value has no position of its own: it is located at its key, as _step does.
            self.positions[(str(frame.key),), False] = _one_based(frame.key_mark if null else start)
        frame.items[frame.key] = value
        frame.key = _NO_KEY


def _one_based(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _NodeValues:
    """Plain Python values from libyaml's nodes: what :func:`_plain` makes of the round-trip loader's data.

    Mappings are built with keys as YAML typed them and turned into strings last, because ruamel compares
    typed keys for duplicates and merges (``1:`` and ``"1":`` are two keys). Anything the round-trip loader
    would treat specially -- a duplicate key, a second ``<<:``, a list as a key, an alias that loops back --
    raises :class:`_RoundTripOnlyError`, and ruamel loads or explains the file instead.
    """

    def __init__(self) -> None:
        self._open: set[int] = set()  # the collections on the path from the root to the current node
        self._done: dict[int, Any] = {}  # an aliased node is built once

    def value(self, node: Node) -> Any:
        """``node`` as dicts with string keys, lists and scalars, ready for pydantic."""
        if isinstance(node, ScalarNode):
            return _scalar(node)
        built = self._collection(node)
        if isinstance(node, MappingNode):
            return {str(key): value for key, value in built.items()}
        return built

    def _collection(self, node: Node) -> Any:
        """A sequence as a list, a mapping as a dict with YAML-typed keys."""
        ident = id(node)
        if ident in self._done:
            return self._done[ident]
        if ident in self._open or len(self._open) >= _FAST_MAX_DEPTH:
            raise _RoundTripOnlyError
        self._open.add(ident)
        try:
            built = (
                self._mapping(node) if isinstance(node, MappingNode) else [self.value(i) for i in node.value]
            )
        finally:
            self._open.discard(ident)
        self._done[ident] = built
        return built

    def _mapping(self, node: MappingNode) -> dict[Any, Any]:
        """Own keys in order, then merged-in keys not already there, the first merged mapping winning."""
        own: dict[Any, Any] = {}
        merged: list[Node] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                if merged is not None:
                    raise _RoundTripOnlyError
                merged = _merge_sources(value_node)
                continue
            key = _key(key_node)
            if key in own or _below_its_key(key_node, value_node):
                raise _RoundTripOnlyError
            own[key] = self.value(value_node)
        for source in merged or ():
            for key, value in self._collection(source).items():
                own.setdefault(key, value)
        return own


def _merge_sources(node: Node) -> list[Node]:
    """The mappings that a ``<<:`` merges in: one mapping or a list of them."""
    if isinstance(node, MappingNode):
        return [node]
    if isinstance(node, SequenceNode) and all(isinstance(item, MappingNode) for item in node.value):
        return list(node.value)
    raise _RoundTripOnlyError


def _below_its_key(key_node: Node, value_node: Node) -> bool:
    """A scalar value on a line after its key's, as in ``key:  # comment`` and the value below.

    ruamel's round-trip loader fails on some such layouts with "overlap in comment", and that is then the
    message the operator gets; only ruamel can tell which layouts.
    """
    return isinstance(value_node, ScalarNode) and value_node.start_mark.line > key_node.start_mark.line


def _key(node: Node) -> Any:
    """A mapping key as YAML typed it.

    A list or mapping as a key is left to ruamel, and so is an empty key (``? `` alone): the parsers place
    an empty scalar differently, and unlike an empty value, a key has no better place to point at.
    """
    if not isinstance(node, ScalarNode) or node.value == "":
        raise _RoundTripOnlyError
    return _scalar(node)


def _scalar(node: ScalarNode) -> Any:
    """A scalar as the round-trip loader reads it under YAML 1.2 (``yes`` is text, ``0x1F`` is 31).

    Dates, ``=`` and a ``<<`` where a value belongs become ruamel's own types; they go the slow way. So
    does text over several lines (block scalars, folded plain or quoted text): that is where the two
    scanners differ in detail, ruamel refusing some indentation of blank lines that libyaml accepts.
    """
    if node.end_mark.line != node.start_mark.line:
        raise _RoundTripOnlyError
    return _typed(node.tag, node.value)


def _typed(tag: str | None, text: str) -> Any:
    """A one-line scalar's value, by the tag libyaml's resolver gave it (see :func:`_scalar`)."""
    if tag == _STR:
        return text
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return _BOOLEANS[text.lower()]
    if tag == _INT:
        return _integer(text)
    if tag == _FLOAT:
        return _real(text)
    raise _RoundTripOnlyError


def _signed(text: str) -> tuple[int, str]:
    """The sign and the digits of a YAML number, underscores dropped."""
    digits = text.replace("_", "")
    if digits.startswith(("+", "-")):
        return (-1 if digits[0] == "-" else 1), digits[1:]
    return 1, digits


def _integer(text: str) -> int:
    """A YAML 1.2 integer: ``0b``, ``0o`` and ``0x`` prefixes; leading zeros are still decimal."""
    sign, digits = _signed(text)
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)


def _real(text: str) -> float:
    sign, digits = _signed(text.lower())
    if digits == ".inf":
        return sign * math.inf
    if digits == ".nan":
        return _NAN
    return sign * float(digits)


# --- shape checks ---------------------------------------------------------------------------------------


def _validate(source: YamlSource, model: type[M], problems: list[Diagnostic], what: str) -> M | None:
    """Check one file against its pydantic model, translating every error to a YAML position."""
    if source.empty:
        problems.append(Diagnostic(source.path, 1, 1, "this file is empty", f"it should hold {what}"))
        return None
    if not source.is_mapping:
        line, column = source.position(())
        problems.append(
            Diagnostic(
                source.path,
                line,
                column,
                f"the top level must be a mapping of keys, found {describe(source.plain())}",
                f"it should hold {what}",
            )
        )
        return None
    try:
        return model.model_validate(source.plain())
    except ValidationError as exc:
        problems.extend(_translate(source, model, error) for error in exc.errors())
    except _RecursiveYamlError:
        problems.append(
            Diagnostic(source.path, 1, 1, "a YAML alias here refers to itself", "remove the loop")
        )
    except RecursionError:
        problems.append(Diagnostic(source.path, 1, 1, "this YAML is nested too deeply to read"))
    return None


def _unwrap(annotation: Any) -> Any:
    """The model or container inside ``X | None`` and ``Annotated[X, ...]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            models = [
                m for m in members if isinstance(_unwrap(m), type) and issubclass(_unwrap(m), BaseModel)
            ]
            if len(members) != 1 and len(models) != 1:
                return annotation
            annotation = members[0] if len(members) == 1 else models[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that describes the mapping at ``loc``, to list its allowed keys."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif origin is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif origin is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_at(model: type[BaseModel], loc: Loc) -> FieldInfo | None:
    owner = _model_at(model, loc[:-1])
    return owner.model_fields.get(str(loc[-1])) if owner is not None and loc else None


def _dotted(loc: Loc) -> str:
    """``("roas", 2, "prefix")`` as ``roas[2].prefix``, the way the operator reads the file."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _translate(source: YamlSource, model: type[BaseModel], error: ErrorDetails) -> Diagnostic:
    """One pydantic error as a diagnostic at the YAML key or value it is about."""
    loc: Loc = tuple(part for part in error["loc"] if part not in UNION_TAGS)
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return _missing(source, model, loc)
    if kind == "extra_forbidden":
        return _unknown_key(source, model, loc)
    if kind == "desired_state":
        # A message that comes with its own hint may end in a parenthesis of its own ("found true (a
        # yes/no value)"); only a message without one has its trailing parenthesis read as the hint.
        given: str | None = (error.get("ctx") or {}).get("hint")
        message, hint = (error["msg"], given) if given else split_hint(error["msg"])
    elif kind in ("model_type", "dict_type"):
        message, hint = f"expected a mapping of keys, found {describe(value)}", "write 'key: value' lines"
    elif kind == "list_type":
        message = f"expected a list, found {describe(value)}"
        hint = "write [] for none" if value is None else "write [a, b] or one '- item' per line"
    else:
        message, hint = error["msg"], quote_hint(value)
    line, column = source.position(loc)
    return Diagnostic(source.path, line, column, f"{_dotted(loc)}: {message}" if loc else message, hint)


def _missing(source: YamlSource, model: type[BaseModel], loc: Loc) -> Diagnostic:
    """A required key is absent: point at the mapping that should hold it and say what it is for."""
    parent = loc[:-1]
    field = _field_at(model, loc)
    hint = f"add '{loc[-1]}:'"
    if field is not None and field.description:
        hint += f" -- {field.description.split('. ')[0].rstrip('.')}"
    where = f" in {_dotted(parent)}" if parent else ""
    line, column = source.position(parent, key=True)
    return Diagnostic(source.path, line, column, f"missing required key '{loc[-1]}'{where}", hint)


def _unknown_key(source: YamlSource, model: type[BaseModel], loc: Loc) -> Diagnostic:
    """A key the format does not know -- almost always a typo, so suggest the nearest real key."""
    owner = _model_at(model, loc[:-1])
    allowed = list(owner.model_fields) if owner is not None else []
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = (f"did you mean '{close[0]}'? " if close else "") + f"allowed keys here: {', '.join(allowed)}"
    where = f" in {_dotted(loc[:-1])}" if loc[:-1] else ""
    line, column = source.position(loc, key=True)
    return Diagnostic(source.path, line, column, f"unknown key '{loc[-1]}'{where}", hint)


# --- the repository -------------------------------------------------------------------------------------


def _load_settings(files: _Files) -> SettingsDoc | None:
    path = files.root / SETTINGS_FILE
    if not path.is_file():
        files.problems.append(
            Diagnostic(
                path,
                1,
                1,
                f"{SETTINGS_FILE} is missing",
                f"is {display_path(files.root)} the desired-state directory? It needs one",
            )
        )
        return None
    source = files.read(path)
    if source is None:
        return None
    spec = _validate(source, RpkiFile, files.problems, "the 'publication' and 'signers' sections")
    if spec is None:
        return None
    files.passed(source)
    return SettingsDoc(source, spec)


def _ca_paths(files: _Files) -> list[Path]:
    """Every ``*.yaml`` under ``cas/``, sorted; hidden files (editor backups) are skipped.

    A ``.yml`` file is an error rather than silently ignored: its author meant it to be a CA.
    """
    cas_dir = files.root / CAS_DIR
    if not cas_dir.is_dir():
        files.problems.append(
            Diagnostic(
                cas_dir, 1, 1, f"there is no {CAS_DIR}/ directory", "create it with one YAML file per CA"
            )
        )
        return []
    outside = guards.directory_outside(files.root, cas_dir)
    if outside is not None:
        files.problems.append(outside)
        return []
    found = []
    for path in cas_dir.rglob("*"):
        relative = path.relative_to(cas_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix == ".yaml":
            found.append(path)
        elif path.suffix == ".yml":
            files.problems.append(
                Diagnostic(path, 1, 1, "CA files must end in .yaml", f"rename it to {path.stem}.yaml")
            )
    if not found:
        files.problems.append(
            Diagnostic(cas_dir, 1, 1, f"no CA files (*.yaml) in {CAS_DIR}/", "add one YAML file per CA")
        )
    return sorted(found, key=lambda p: p.relative_to(cas_dir).as_posix())


def _salvage(source: YamlSource) -> BrokenCa:
    """Read name and trust_anchor from a CA file that failed its shape check, to avoid follow-on errors
    such as "unknown parent" in its children."""
    root = source.top_level()
    name = root.get("name")
    usable = isinstance(name, str) and CA_NAME_RE.match(name) is not None
    # Any trust_anchor key counts: "trust_anchor: yes" is broken, but its author meant a trust anchor.
    return BrokenCa(name if usable else None, "trust_anchor" in root and root["trust_anchor"] is not False)


def _load_cas(files: _Files) -> tuple[list[CaDoc], list[BrokenCa]]:
    docs: list[CaDoc] = []
    broken: list[BrokenCa] = []
    for path in _ca_paths(files):
        source = files.read(path)
        if source is None:
            broken.append(BrokenCa(None, trust_anchor=False))
            continue
        spec = _validate(source, CaFile, files.problems, "one CA: at least 'name' and 'resources'")
        if spec is None:
            broken.append(_salvage(source))
        else:
            files.passed(source)
            docs.append(CaDoc(files.settled(source, _located(spec)), spec))
    return docs, broken


def _digest(contents: dict[str, bytes]) -> str:
    """sha256 over (relative path, bytes) of every file read, in path order; lengths keep it unambiguous."""
    digest = hashlib.sha256()
    for name in sorted(contents):
        data = contents[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _location(source: Source, loc: Loc, *, key: bool = False) -> SourceLocation:
    line, column = source.position(loc, key=key)
    return SourceLocation(source.path, line, column)


def _safety(policy: SafetyPolicy, doc: CaDoc) -> SafetyPolicy:
    """rpki.yaml's policy with the keys this CA's ``safety:`` section sets (the rest are inherited)."""
    overrides = doc.spec.safety.model_dump(exclude_unset=True)
    return replace(policy, **overrides) if overrides else policy


def _located(spec: CaFile) -> Iterator[tuple[Loc, bool]]:
    """The positions a CA's intent carries (``(loc, key)``): its name's key, each ROA entry, each ASPA
    entry, each router entry, then each external child."""
    yield ("name",), True
    for index in range(len(spec.roas)):
        yield ("roas", index), False
    for index in range(len(spec.aspas)):
        yield ("aspas", index), False
    for index in range(len(spec.routers)):
        yield ("routers", index), False
    for index in range(len(spec.children)):
        yield ("children", index), False


def _ca_intent(
    doc: CaDoc, policy: SafetyPolicy, requests: oobfiles.Requests, keys: routerkeys.RouterKeys
) -> CaIntent:
    source = doc.source
    name, *entries = (_location(source, loc, key=key) for loc, key in _located(doc.spec))
    roa_count, aspa_count, router_count = len(doc.spec.roas), len(doc.spec.aspas), len(doc.spec.routers)
    roa_entries = entries[:roa_count]
    aspa_entries = entries[roa_count : roa_count + aspa_count]
    router_entries = entries[roa_count + aspa_count : roa_count + aspa_count + router_count]
    child_entries = entries[roa_count + aspa_count + router_count :]
    roas = tuple(
        RoaIntent(
            asn=roa.asn,
            prefix=roa.prefix,
            max_length=roa.prefix.prefixlen if roa.max_length is None else roa.max_length,
            comment=roa.comment,
            where=where,
        )
        for roa, where in zip(doc.spec.roas, roa_entries, strict=True)
    )
    aspas = sorted(
        (
            AspaIntent(
                customer=entry.customer,
                providers=tuple(sorted(entry.providers)),
                comment=entry.comment,
                where=where,
            )
            for entry, where in zip(doc.spec.aspas, aspa_entries, strict=True)
        ),
        key=lambda intent: intent.customer,
    )
    return CaIntent(
        name=doc.name,
        parent=doc.spec.local_parent,
        trust_anchor=doc.spec.trust_anchor,
        resources=doc.resources,
        roas=roas,
        aspas=tuple(aspas),
        routers=tuple(
            _router(entry, keys.keys[(doc.name, index)], where)
            for index, (entry, where) in enumerate(zip(doc.spec.routers, router_entries, strict=True))
        ),
        signer=doc.spec.signer,
        where=name,
        safety=_safety(policy, doc),
        key_generation=doc.spec.key_generation,
        children=tuple(
            _external_child(child, requests.children[(doc.name, index)], where)
            for index, (child, where) in enumerate(zip(doc.spec.children, child_entries, strict=True))
        ),
        upstream=_upstream(requests.parents.get(doc.name)),
    )


def _router(entry: RouterEntry, key: routerkeys.RouterKeyFile, where: SourceLocation) -> RouterIntent:
    """One entry of a CA's ``routers``, with its key as ``routerkeys`` read it."""
    return RouterIntent(
        key=key.key,
        key_id=key.key_id,
        asns=AsnSet.of((asn, asn) for asn in entry.asns),
        router_id=entry.router_id,
        file=key.relative,
        comment=entry.comment,
        where=where,
    )


def _upstream(request: oobfiles.Request | None) -> UpstreamParent | None:
    """A CA's external parent, from its parent_response as ``oobfiles`` read it."""
    if request is None:
        return None
    response = typing.cast("ParentResponse", request.message)
    return UpstreamParent(response=response, identity=request.identity, response_file=request.file)


def _remote_repository(requests: oobfiles.Requests) -> RemoteRepository | None:
    """The repository the CA under an external parent publishes at, when it names one (checks allow one)."""
    for owner, request in requests.repositories.items():
        response = typing.cast("RepositoryResponse", request.message)
        return RemoteRepository(response, request.identity, request.file, owner)
    return None


def _external_child(
    child: ExternalChildEntry, request: oobfiles.Request, where: SourceLocation
) -> ExternalChild:
    """One entry of a CA's ``children``, with its request file as read by ``oobfiles``."""
    held = child.resources
    return ExternalChild(
        handle=child.handle,
        request=typing.cast("ChildRequest", request.message),
        identity=request.identity,
        request_file=request.file,
        resources=Resources.parse(held.asn, held.ipv4, held.ipv6),
        comment=child.comment,
        where=where,
    )


def _publishers(settings: SettingsDoc, requests: oobfiles.Requests) -> tuple[Publisher, ...]:
    """rpki.yaml's publishers, each with its sia_base below the rsync base (``layout``)."""
    rsync_base = settings.spec.publication.rsync_base or ""  # set: checks refuse publishers without it
    return tuple(
        Publisher(
            handle=entry.handle,
            request=typing.cast("PublisherRequest", requests.publishers[index].message),
            identity=requests.publishers[index].identity,
            request_file=requests.publishers[index].file,
            sia_base=rsync_base + layout.publisher_repository(entry.handle),
            quota=PublisherQuota(objects=entry.quota.objects, size=entry.quota.size),
            comment=entry.comment,
            where=_location(settings.source, ("publishers", index)),
        )
        for index, entry in enumerate(settings.spec.publishers)
    )


def _signer_config(base: Path, name: str, signer: SignerSection) -> SignerConfig:
    """Paths resolved against rpki.yaml's directory; the PIN and the passphrase are left for
    ``open_signer`` to read."""
    if signer.type == "pkcs11":
        return Pkcs11SignerConfig(
            name=name,
            type=signer.type,
            module=None if signer.module is None else resolve_path(base, signer.module),
            token=signer.token,
            pin_env=signer.pin_env,
        )
    directory = None if signer.directory is None else resolve_path(base, signer.directory)
    return SignerConfig(
        name=name,
        type=signer.type,
        directory=directory,
        passphrase_env=signer.passphrase_env,
        key_signer=signer.key_signer,
    )


def _build(
    root: Path,
    settings: SettingsDoc,
    docs: Sequence[CaDoc],
    digest: str,
    requests: oobfiles.Requests,
    *,
    keys: routerkeys.RouterKeys,
) -> DesiredState:
    """The checked state; only reached when no diagnostic was found."""
    base = settings.source.path.parent
    spec = settings.spec
    policy = SafetyPolicy(**{f.name: getattr(spec.safety, f.name) for f in fields(SafetyPolicy)})
    remote = _remote_repository(requests)
    return DesiredState(
        root=root,
        publication=Publication(
            rsync_base=remote.response.sia_base if remote else typing.cast(str, spec.publication.rsync_base),
            directory=resolve_path(base, spec.publication.directory),
            rrdp_base=spec.publication.rrdp_base,
            remote=remote,
        ),
        signers={name: _signer_config(base, name, signer) for name, signer in spec.signers.items()},
        timing=Timing(**{f.name: getattr(spec.timing, f.name) for f in fields(Timing)}),
        cas=tuple(_ca_intent(doc, policy, requests, keys) for doc in order_cas(docs)),
        digest=digest,
        safety=policy,
        plan_max_age=spec.plan_max_age,
        audit_log=None if spec.audit_log is None else resolve_path(base, spec.audit_log),
        roa_grouping=RoaGrouping(spec.roa_grouping.aggregate_above, spec.roa_grouping.split_below),
        publishers=_publishers(settings, requests),
        serve=Serve(base_uri=spec.serve.base_uri, signer=spec.serve.signer),
    )


def load(repo: Path, *, cache_key: CacheKey | None = None) -> DesiredState:
    """Load and check the desired state in ``repo`` (the directory holding rpki.yaml and cas/).

    With ``cache_key`` (the key the desired state's own signer gives, or None without one), files seen
    before are taken from the parse cache, whose seal that key must then confirm; without it, or when the
    seal does not hold, every file is parsed.

    Raises :class:`DesiredStateError` listing every problem found, in file order; nothing else escapes.
    """
    return _load(repo, cache_key, trust_rows=True)


def _load(repo: Path, cache_key: CacheKey | None, *, trust_rows: bool) -> DesiredState:
    """:func:`load`; with ``trust_rows`` false, the parse cache's rows are not read, only replaced."""
    root = Path(repo).expanduser().resolve()
    if not root.is_dir():
        raise DesiredStateError(
            [Diagnostic(root, 1, 1, "the desired-state directory does not exist", "check the path")]
        )
    files = _Files(root, {}, [])
    settings = _load_settings(files)
    cache_in = _publication_directory(settings) if cache_key is not None else None
    if cache_in is not None:
        files.cache = parse_cache.load(cache_in) if trust_rows else parse_cache.ParseCache()
    docs, broken = _load_cas(files)
    problems = list(files.problems)
    if settings is not None:
        problems += check_settings(settings, root)
    problems += check_cas(docs, broken, settings, root / CAS_DIR)
    requests = oobfiles.read_all(root, settings, docs)
    problems += requests.problems
    files.contents.update(requests.contents)  # request files are desired state: the digest covers them
    keys = routerkeys.read_all(root, docs)
    problems += keys.problems
    files.contents.update(keys.contents)  # so are router keys: a plan is bound to the keys it was made for
    if problems or settings is None:
        if files.cache is not None and files.cache.read_rows:
            return _load(repo, cache_key, trust_rows=False)  # a row may be what is wrong: ask the files
        raise DesiredStateError(problems)
    desired = _build(root, settings, docs, _digest(files.contents), requests, keys=keys)
    if files.cache is None or cache_in is None or cache_key is None:
        return desired
    secret = cache_key(desired)
    if not files.cache.authentic(secret):
        if secret is not None:  # without a key (a review without secrets) nothing could be sealed
            cachefile.note_dropped(parse_cache.path(cache_in), "its rows are not sealed by this CA's key")
        return _load(repo, cache_key, trust_rows=False)
    files.remember()  # after _build, which asks where each ROA entry is
    parse_cache.save(cache_in, files.cache, secret)
    return desired


@dataclass(frozen=True)
class Settings:
    """rpki.yaml on its own: its signers and the publication directory."""

    signers: dict[str, SignerConfig]
    directory: Path


def load_settings(repo: Path) -> Settings:
    """rpki.yaml alone, with its own checks: what a CA's first RFC 8183 request needs, before its CA file
    can name the parent's and the repository's answers. Raises :class:`DesiredStateError`."""
    root = Path(repo).expanduser().resolve()
    files = _Files(root, {}, [])
    settings = _load_settings(files)
    problems = list(files.problems)
    if settings is not None:
        problems += check_settings(settings, root)
    if problems or settings is None:
        raise DesiredStateError(problems)
    base = settings.source.path.parent
    signers = {name: _signer_config(base, name, signer) for name, signer in settings.spec.signers.items()}
    return Settings(signers, resolve_path(base, settings.spec.publication.directory))


def _publication_directory(settings: SettingsDoc | None) -> Path | None:
    """Where the parse cache lives (beside the other caches of the publication point), when known."""
    if settings is None or not FAST_PARSE:
        return None
    return resolve_path(settings.source.path.parent, settings.spec.publication.directory)
