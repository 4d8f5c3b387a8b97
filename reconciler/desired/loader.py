"""Read the desired-state directory into a checked :class:`DesiredState`, or explain everything wrong with it.

The loader never stops at the first problem: it reads every file, shape-checks each one with the pydantic
models in ``schema.py``, runs the cross-file rules in ``checks.py`` on whatever loaded, and only then
raises one :class:`DesiredStateError` carrying all diagnostics. YAML is read with ruamel's round-trip
loader because it remembers where each key and value was, which is what lets every message point at a
line and column instead of at a Python traceback.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

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
    CaIntent,
    DesiredState,
    Pkcs11SignerConfig,
    Publication,
    RoaIntent,
    SafetyPolicy,
    SignerConfig,
    SourceLocation,
    Timing,
)
from reconciler.desired.schema import CA_NAME_RE, CaFile, RpkiFile, SignerSection, describe, quote_hint
from reconciler.diagnostics import DesiredStateError, Diagnostic, display_path, split_hint

SETTINGS_FILE = "rpki.yaml"
CAS_DIR = "cas"

M = TypeVar("M", bound=BaseModel)


class YamlSource:
    """A parsed YAML file: its path and ruamel node tree, able to turn a key path into a position."""

    def __init__(self, path: Path, root: Any) -> None:
        self._path = path
        self.root = root

    @property
    def path(self) -> Path:
        return self._path

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``loc`` (or of its key), or of the nearest parent.

        Walking stops where the YAML stops matching ``loc`` -- a missing key, a scalar where a list was
        expected, a key that came in through a ``<<:`` merge and so has no position of its own -- so
        that errors about absent things point at the enclosing key.
        """
        node = self.root
        line, column = _start(node)
        for depth, part in enumerate(loc):
            step = _step(node, part, key=key and depth == len(loc) - 1)
            if step is None:
                break
            (line, column), node = step
        return line + 1, column + 1


def _step(node: Any, part: str | int, *, key: bool) -> tuple[tuple[int, int], Any] | None:
    """One level down from ``node``: the 0-based position of ``part`` and the child node, if any."""
    try:
        if isinstance(node, CommentedMap):
            found = _find_key(node, part)
            if found is None:
                return None
            yaml_key, child = found
            # An empty value has no position of its own (ruamel puts it on the next line): use the key.
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
    if isinstance(node, CommentedMap | CommentedSeq):
        return node.lc.line, node.lc.col
    return 0, 0


def _find_key(mapping: CommentedMap, part: str | int) -> tuple[Any, Any] | None:
    """The YAML key matching a pydantic loc part (keys were turned into strings for validation)."""
    for yaml_key, value in mapping.items():
        if yaml_key == part or str(yaml_key) == str(part):
            return yaml_key, value
    return None


# --- reading --------------------------------------------------------------------------------------------


@dataclass
class _Files:
    """Everything read so far: bytes for the digest, diagnostics for the final report."""

    root: Path
    contents: dict[str, bytes]
    problems: list[Diagnostic]

    def read(self, path: Path) -> YamlSource | None:
        """Read and parse one file, recording its bytes and any problem; None if it cannot be used."""
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.problems.append(Diagnostic(path, 1, 1, f"cannot read this file: {exc.strerror}"))
            return None
        self.contents[path.relative_to(self.root).as_posix()] = raw
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line, column = _line_col(raw[: exc.start].decode("utf-8", "replace"))
            self.problems.append(
                Diagnostic(path, line, column, "this file is not UTF-8 text", "save it as UTF-8")
            )
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
            # cannot apply, e.g. "!!int abc"; the operator needs a pointer to the file, not a traceback.
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


def _yaml_problem(path: Path, text: str, exc: YAMLError) -> Diagnostic:
    """Turn a ruamel parse error into a diagnostic at the spot ruamel blames."""
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "cannot parse this"
        if isinstance(exc, DuplicateKeyError):
            hint: str | None = "each key may appear only once in a mapping; remove or merge one"
        elif "'\\t'" in problem:
            hint = "indent with spaces; YAML does not allow tabs"
        elif "mapping values are not allowed" in problem:
            hint = "check the indentation, or quote a value that contains ': '"
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


# --- shape checks ---------------------------------------------------------------------------------------


def _validate(source: YamlSource, model: type[M], problems: list[Diagnostic], what: str) -> M | None:
    """Check one file against its pydantic model, translating every error to a YAML position."""
    if source.root is None:
        problems.append(Diagnostic(source.path, 1, 1, "this file is empty", f"it should hold {what}"))
        return None
    if not isinstance(source.root, CommentedMap):
        line, column = source.position(())
        problems.append(
            Diagnostic(
                source.path,
                line,
                column,
                f"the top level must be a mapping of keys, found {describe(_plain(source.root))}",
                f"it should hold {what}",
            )
        )
        return None
    try:
        return model.model_validate(_plain(source.root))
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
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


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
    loc: Loc = tuple(error["loc"])
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
    return SettingsDoc(source, spec) if spec is not None else None


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
    root = source.root if isinstance(source.root, CommentedMap) else {}
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
            docs.append(CaDoc(source, spec))
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


def _ca_intent(doc: CaDoc, policy: SafetyPolicy) -> CaIntent:
    source = doc.source
    roas = tuple(
        RoaIntent(
            asn=roa.asn,
            prefix=roa.prefix,
            max_length=roa.prefix.prefixlen if roa.max_length is None else roa.max_length,
            comment=roa.comment,
            where=_location(source, ("roas", i)),
        )
        for i, roa in enumerate(doc.spec.roas)
    )
    return CaIntent(
        name=doc.name,
        parent=doc.spec.parent,
        trust_anchor=doc.spec.trust_anchor,
        resources=doc.resources,
        roas=roas,
        signer=doc.spec.signer,
        where=_location(source, ("name",), key=True),
        safety=_safety(policy, doc),
        key_generation=doc.spec.key_generation,
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


def _build(root: Path, settings: SettingsDoc, docs: Sequence[CaDoc], digest: str) -> DesiredState:
    """The checked state; only reached when no diagnostic was found."""
    base = settings.source.path.parent
    spec = settings.spec
    policy = SafetyPolicy(**{f.name: getattr(spec.safety, f.name) for f in fields(SafetyPolicy)})
    return DesiredState(
        root=root,
        publication=Publication(
            rsync_base=spec.publication.rsync_base,
            directory=resolve_path(base, spec.publication.directory),
            rrdp_base=spec.publication.rrdp_base,
        ),
        signers={name: _signer_config(base, name, signer) for name, signer in spec.signers.items()},
        timing=Timing(**{f.name: getattr(spec.timing, f.name) for f in fields(Timing)}),
        cas=tuple(_ca_intent(doc, policy) for doc in order_cas(docs)),
        digest=digest,
        safety=policy,
        plan_max_age=spec.plan_max_age,
        audit_log=None if spec.audit_log is None else resolve_path(base, spec.audit_log),
    )


def load(repo: Path) -> DesiredState:
    """Load and check the desired state in ``repo`` (the directory holding rpki.yaml and cas/).

    Raises :class:`DesiredStateError` listing every problem found, in file order; nothing else escapes.
    """
    root = Path(repo).expanduser().resolve()
    if not root.is_dir():
        raise DesiredStateError(
            [Diagnostic(root, 1, 1, "the desired-state directory does not exist", "check the path")]
        )
    files = _Files(root, {}, [])
    settings = _load_settings(files)
    docs, broken = _load_cas(files)
    problems = list(files.problems)
    if settings is not None:
        problems += check_settings(settings, root)
    problems += check_cas(docs, broken, settings, root / CAS_DIR)
    if problems or settings is None:
        raise DesiredStateError(problems)
    return _build(root, settings, docs, _digest(files.contents))
