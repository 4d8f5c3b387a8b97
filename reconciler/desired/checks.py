"""Rules that need more than one value (or the file system): parents, trust anchors, containment, ROAs,
signers, timing and the audit log.

``schema.py`` has already checked each file's shape, so everything here works on typed values. Each check
returns diagnostics instead of raising, so that one run reports every problem in the repository. Checks
take care not to pile up follow-on errors: a CA whose file is broken still "exists" for its children, and
nothing is compared against a value that failed to load.

Locations come from a :class:`Source`, which the loader backs with the ruamel node tree; checks name a
place by its key path (``("roas", 2, "max_length")``), exactly like pydantic errors do.
"""

from __future__ import annotations

import difflib
import heapq
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Protocol

from reconciler import layout
from reconciler.desired.schema import (
    SIGNER_KEYS,
    SIGNER_NAME_RE,
    CaFile,
    ResourcesSection,
    RpkiFile,
    SignerSection,
    format_duration,
)
from reconciler.diagnostics import Diagnostic, display_path, excerpt
from reconciler.resources import AsnSet, IPNetwork, IpSet, Resources
from reconciler.rpki import aspa

Loc = tuple[str | int, ...]

TIMING_PAIRS = (
    ("manifest_validity", "manifest_renew_before"),
    ("certificate_validity", "certificate_renew_before"),
    ("ta_certificate_validity", "ta_certificate_renew_before"),
    ("ta_manifest_validity", "ta_manifest_renew_before"),
)


class Source(Protocol):
    """A loaded file that can say where a key path is (1-based line and column)."""

    @property
    def path(self) -> Path: ...

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]: ...


def diag(source: Source, loc: Loc, message: str, hint: str | None = None, *, key: bool = False) -> Diagnostic:
    """A diagnostic at the value (or, with ``key=True``, the key) that ``loc`` names."""
    line, column = source.position(loc, key=key)
    return Diagnostic(source.path, line, column, message, hint)


def resolve_path(base: Path, text: str) -> Path:
    """Resolve a path from rpki.yaml: relative to the file's directory, ``~`` expanded, symlinks followed.

    A symlink loop cannot be followed; the path is then only normalised, and whatever later uses it
    reports the loop with the real operating-system error.
    """
    path = base / Path(text.strip()).expanduser()
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.normpath(path))


@dataclass(frozen=True)
class SettingsDoc:
    """rpki.yaml, shape-checked."""

    source: Source
    spec: RpkiFile


@dataclass(frozen=True)
class CaDoc:
    """One CA file, shape-checked."""

    source: Source
    spec: CaFile

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def resources(self) -> Resources:
        """Parsed once: the checks ask for a CA's resources as parent and as child, and its intent again."""
        held = self.spec.resources
        return Resources.parse(held.asn, held.ipv4, held.ipv6)

    def where(self) -> str:
        """``file:line:col`` of the CA's name, for messages that point at another file."""
        line, column = self.source.position(("name",), key=True)
        return f"{display_path(self.source.path)}:{line}:{column}"


@dataclass(frozen=True)
class BrokenCa:
    """What could still be read from a CA file that failed its shape check, to avoid follow-on errors."""

    name: str | None
    trust_anchor: bool


# --- rpki.yaml ------------------------------------------------------------------------------------------


def check_settings(doc: SettingsDoc, root: Path) -> list[Diagnostic]:
    """Timing margins, signer keys and directories, and the audit log."""
    return [
        *_check_timing(doc),
        *_check_signer_names(doc),
        *_check_signer_keys(doc),
        *_check_key_signers(doc),
        *_check_signer_directories(doc, root),
        *_check_audit_log(doc),
        *_check_roa_grouping(doc),
        *_check_publishers(doc),
    ]


def _check_publishers(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """Publisher handles name directories and service URIs, so each is used once; and the publication
    server's identity key needs an online signer rpki.yaml defines."""
    spec = doc.spec
    first: dict[str, int] = {}
    for index, publisher in enumerate(spec.publishers):
        seen = first.setdefault(publisher.handle, index)
        if seen != index:
            line, _ = doc.source.position(("publishers", seen))
            yield diag(
                doc.source,
                ("publishers", index, "handle"),
                f"publisher handle '{publisher.handle}' is also used at line {line}",
                "handles must be unique: choose another one for one of these publishers",
            )
    if not spec.publishers:
        return
    name = spec.serve.signer
    found = spec.signers.get(name)
    given = "signer" in spec.serve.model_fields_set
    loc: Loc = ("serve", "signer") if given else ("publishers",)
    if found is None:
        known = sorted(n for n, s in spec.signers.items() if s.type != "offline")
        yield diag(
            doc.source,
            loc,
            f"the publication server's identity key needs signer '{name}'"
            f"{'' if given else ' (the default)'}, which signers does not define",
            f"{_did_you_mean(name, known)}set serve.signer to one of: {', '.join(known) or 'none'}",
            key=not given,
        )
    elif found.type == "offline":
        yield diag(
            doc.source,
            loc,
            f"signer '{name}' is offline; the publication server signs its replies online",
            "set serve.signer to a file or pkcs11 signer",
            key=not given,
        )


def _check_roa_grouping(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """Hysteresis needs split_below at most aggregate_above; the other way round would flap."""
    grouping = doc.spec.roa_grouping
    if grouping.split_below > grouping.aggregate_above:
        loc: Loc = (
            "roa_grouping",
            "split_below" if "split_below" in grouping.model_fields_set else "aggregate_above",
        )
        yield diag(
            doc.source,
            loc,
            f"roa_grouping: split_below ({grouping.split_below}) is above aggregate_above "
            f"({grouping.aggregate_above})",
            "use a split_below of at most aggregate_above, such as half of it",
        )


def _check_timing(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """A renewal margin at least as long as the validity would re-issue objects on every single run."""
    timing = doc.spec.timing
    given = timing.model_fields_set

    def shown(name: str) -> str:
        value: timedelta = getattr(timing, name)
        return f"{name} ({format_duration(value)}{'' if name in given else ', the default'})"

    for validity_name, renew_name in TIMING_PAIRS:
        if getattr(timing, renew_name) < getattr(timing, validity_name):
            continue
        # Point at what the operator wrote: the margin if given, else the validity they shortened.
        loc: Loc = ("timing", renew_name if renew_name in given else validity_name)
        yield diag(
            doc.source,
            loc,
            f"{shown(renew_name)} must be shorter than {shown(validity_name)}",
            "otherwise every run re-issues these objects; a third of the validity is a good margin",
        )


def _check_signer_names(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """A signer's name is shown in plans, status pages and monitoring: plain letters, digits, '-' and '_'
    keep it from carrying terminal escapes or markup there."""
    for name in doc.spec.signers:
        if not SIGNER_NAME_RE.match(name):
            yield diag(
                doc.source,
                ("signers", name),
                f"{excerpt(name)} is not a usable signer name",
                "use 1 to 64 letters, digits, '-' and '_', starting with a letter or digit",
                key=True,
            )


def _check_signer_keys(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """Each signer type has its own keys (``SIGNER_KEYS``): its required keys must be there, its optional
    keys may be, and a key of another type is refused rather than ignored -- a ``directory`` on an HSM
    signer suggests that its author thinks the keys are files somewhere, which they are not."""
    for name, signer in doc.spec.signers.items():
        keys = SIGNER_KEYS[signer.type]
        given = signer.model_fields_set
        for key in keys.required:
            if key not in given:
                description = SignerSection.model_fields[key].description or ""
                purpose = description.split(": ", 1)[-1].split(". ")[0].rstrip(".")
                yield diag(
                    doc.source,
                    ("signers", name),
                    f"missing required key '{key}' in signers.{name}",
                    f"add '{key}:' -- a {signer.type} signer needs it: {purpose}",
                    key=True,
                )
        takes = ", ".join(keys.required)
        if keys.optional:
            takes += f" (and optionally {', '.join(keys.optional)})"
        for key in sorted(given - {"type", *keys.allowed}, key=list(SignerSection.model_fields).index):
            yield diag(
                doc.source,
                ("signers", name, key),
                f"'{key}' does not apply to a {signer.type} signer (signers.{name})",
                f"remove it; a {signer.type} signer takes {takes}",
                key=True,
            )


def _check_key_signers(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """An offline signer names the signer that holds the key on the offline machine: one that exists
    and really holds keys (not another offline signer)."""
    signers = doc.spec.signers
    for name, signer in signers.items():
        if signer.type != "offline" or signer.key_signer is None:
            continue
        target = signers.get(signer.key_signer)
        if target is None:
            known = sorted(n for n, s in signers.items() if s.type != "offline")
            yield diag(
                doc.source,
                ("signers", name, "key_signer"),
                f"signer '{signer.key_signer}' is not defined in signers",
                f"{_did_you_mean(signer.key_signer, known)}define the signer that holds the trust anchor's "
                "key on the offline machine, e.g. a file or pkcs11 signer",
            )
        elif target.type == "offline":
            yield diag(
                doc.source,
                ("signers", name, "key_signer"),
                f"signer '{signer.key_signer}' is itself offline",
                "name the file or pkcs11 signer that holds the key on the offline machine",
            )


def _check_signer_directories(doc: SettingsDoc, root: Path) -> Iterable[Diagnostic]:
    """Keys inside the desired-state directory would be one ``git add`` away from being published."""
    base = doc.source.path.parent
    for name, signer in doc.spec.signers.items():
        if signer.type != "file" or signer.directory is None:
            continue
        directory = resolve_path(base, signer.directory)
        if directory == root or root in directory.parents:
            yield diag(
                doc.source,
                ("signers", name, "directory"),
                f"signer '{name}' keeps private keys inside the desired-state directory {display_path(root)}",
                "keys must never be committed: move the directory outside the Git repository",
            )


def _check_audit_log(doc: SettingsDoc) -> Iterable[Diagnostic]:
    """The audit log is a file: it may live anywhere, even inside the desired-state directory, but a
    directory cannot be written as a log (and a trailing '/' shows that one was meant)."""
    written = doc.spec.audit_log
    if written is None:
        return
    path = resolve_path(doc.source.path.parent, written)
    try:
        is_directory = path.is_dir()
    except OSError:  # e.g. no permission to look: whatever writes the log reports that
        is_directory = False
    shown = written.strip()
    if is_directory or shown.endswith(("/", os.sep)):
        what = "is a directory" if is_directory else "ends with '/', so it names a directory"
        yield diag(
            doc.source,
            ("audit_log",),
            f"audit_log {shown!r} {what}, not a file",
            f"name a file in it, e.g. {shown.rstrip('/' + os.sep)}/audit.jsonl",
        )


# --- CA files -------------------------------------------------------------------------------------------


def check_cas(
    docs: Sequence[CaDoc], broken: Sequence[BrokenCa], settings: SettingsDoc | None, cas_dir: Path
) -> list[Diagnostic]:
    """Every rule across CA files. ``docs`` are in file order; ``broken`` are files that failed to load."""
    by_name = _first_by_name(docs)
    broken_names = {b.name for b in broken if b.name is not None}
    problems = [*_check_duplicate_names(docs), *_check_trust_anchors(docs, broken, cas_dir)]
    problems += _check_parents(docs, by_name, broken_names)
    problems += _check_cycles(by_name)
    problems += _check_containment(docs, by_name)
    problems += _check_child_handles(docs, by_name, broken_names)
    problems += _check_reserved_names(docs, settings)
    problems += _check_publication_place(docs, settings)
    for doc in docs:
        problems += _check_holds_something(doc)
        problems += _check_signer(doc, settings)
        problems += _check_key_generation(doc)
        problems += _check_roas(doc)
        problems += _check_aspas(doc)
        problems += _check_routers(doc)
        problems += _check_external_children(doc, settings)
    return problems


def _check_publication_place(docs: Sequence[CaDoc], settings: SettingsDoc | None) -> Iterable[Diagnostic]:
    """rpki.yaml's rsync_base says where we serve the publication point; a remote repository's sia_base
    says where someone else does. Exactly one of the two is the base of every URI."""
    if settings is None:
        return
    publication = settings.spec.publication
    remote = next((doc for doc in docs if doc.spec.repository is not None), None)
    if remote is None:
        if publication.rsync_base is None:
            yield diag(
                settings.source,
                ("publication",),
                "publication.rsync_base is missing",
                "add the rsync URI that publication.directory is served as, e.g. rsync_base: "
                "rsync://rpki.example.net/repo/ (or name a remote repository in the CA file of a CA "
                "under an external parent)",
                key=True,
            )
        return
    for key in ("rsync_base", "rrdp_base"):
        if getattr(publication, key) is not None:
            yield diag(
                settings.source,
                ("publication", key),
                f"publication.{key} is set, and CA '{remote.name}' publishes at a remote repository "
                f"({remote.where()})",
                f"remove {key}: the repository_response says where the objects are served",
            )
    if settings.spec.publishers:
        yield diag(
            settings.source,
            ("publishers",),
            f"publishers are declared, and CA '{remote.name}' publishes at a remote repository",
            "a publication server serves its own repository: remove 'publishers:' or the CA's 'repository:'",
            key=True,
        )


def _check_child_handles(
    docs: Sequence[CaDoc], by_name: Mapping[str, CaDoc], broken_names: set[str]
) -> Iterable[Diagnostic]:
    """An external child's handle is its RFC 6492 address and names its certificate beside those of the
    parent's local child CAs: unique across every CA file, and never a CA's name."""
    first: dict[str, tuple[CaDoc, int]] = {}
    for doc in docs:
        for index, child in enumerate(doc.spec.children):
            loc: Loc = ("children", index, "handle")
            owner = by_name.get(child.handle)
            if owner is not None or child.handle in broken_names:
                where = f" ({owner.where()})" if owner is not None else ""
                yield diag(
                    doc.source,
                    loc,
                    f"child handle '{child.handle}' is the name of CA '{child.handle}'{where}",
                    "choose another handle: an external child's certificate is named after its handle, "
                    "beside those of local child CAs",
                )
                continue
            other, other_index = first.setdefault(child.handle, (doc, index))
            if other is doc and other_index == index:
                continue
            line, column = other.source.position(("children", other_index, "handle"))
            yield diag(
                doc.source,
                loc,
                f"child handle '{child.handle}' is also used in "
                f"{display_path(other.source.path)}:{line}:{column}",
                "handles must be unique across all CA files: choose another one for one of these children",
            )


#: CA names that cannot be used while rpki.yaml declares publishers: the directory of the publishers'
#: repositories, and the owner of the publication server's BPKI identity key.
RESERVED_WITH_PUBLISHERS = (layout.PUBLISHERS, "repository")


def _check_reserved_names(docs: Sequence[CaDoc], settings: SettingsDoc | None) -> Iterable[Diagnostic]:
    """``publishers`` always: every reading of the publication treats that directory as the publishers'
    (a removed publisher's objects stay there until an approved apply withdraws them)."""
    declared = settings is not None and bool(settings.spec.publishers)
    for doc in docs:
        if doc.name == layout.PUBLISHERS or (declared and doc.name in RESERVED_WITH_PUBLISHERS):
            use = (
                "the publishers' repositories are published under <rsync_base>publishers/"
                if doc.name == layout.PUBLISHERS
                else "it names the publication server's BPKI identity"
            )
            yield diag(
                doc.source,
                ("name",),
                f"the CA name '{doc.name}' is reserved"
                + ("" if doc.name == layout.PUBLISHERS else " while rpki.yaml declares publishers"),
                f"{use}: rename this CA",
            )


def _resource_items(held: ResourcesSection, at: Loc) -> Iterable[tuple[Loc, str, AsnSet | IpSet]]:
    """Each resource item of a ``resources`` section at ``at``, with its key path."""
    for i, asn in enumerate(held.asn):
        yield (*at, "asn", i), str(asn), AsnSet.parse([asn])
    for i, block in enumerate(held.ipv4):
        yield (*at, "ipv4", i), block, IpSet.parse(4, [block])
    for i, block in enumerate(held.ipv6):
        yield (*at, "ipv6", i), block, IpSet.parse(6, [block])


def _check_external_children(doc: CaDoc, settings: SettingsDoc | None) -> Iterable[Diagnostic]:
    """A CA answers its external children online, and certifies them only for resources it holds."""
    children = doc.spec.children
    if not children:
        return
    signer = settings.spec.signers.get(doc.spec.signer) if settings is not None else None
    if signer is not None and signer.type == "offline":
        yield diag(
            doc.source,
            ("children",),
            f"CA '{doc.name}' uses the offline signer '{doc.spec.signer}' and cannot answer external "
            "children",
            "children ask for certificates whenever they like: move them to a CA below the trust anchor",
            key=True,
        )
    for index, child in enumerate(children):
        at: Loc = ("children", index, "resources")
        items = list(_resource_items(child.resources, at))
        if not items:
            yield diag(
                doc.source,
                at,
                f"external child '{child.handle}' is entitled to no resources",
                "list at least one AS number or prefix; remove the child to stop certifying it",
                key=True,
            )
        for loc, written, item in items:
            over = _outside(item, doc.resources)
            if not over:
                continue
            part = "" if over == item else f" (part of {written})"
            yield diag(
                doc.source,
                loc,
                f"{over}{part} is not held by CA '{doc.name}', the parent of external child '{child.handle}'",
                "remove it from the child's resources, or add it to this CA's resources",
            )


def _check_key_generation(doc: CaDoc) -> Iterable[Diagnostic]:
    """Relying parties find the trust anchor's key through the TAL they were given, so its key cannot be
    rolled by publishing alone (that takes a new TAL, RFC 9691); only CAs below it roll their keys."""
    if doc.spec.trust_anchor and doc.spec.key_generation != 1:
        yield diag(
            doc.source,
            ("key_generation",),
            "the trust anchor's key cannot be rolled with key_generation",
            "relying parties hold its key in their TAL: remove key_generation from the trust anchor",
        )


def _first_by_name(docs: Sequence[CaDoc]) -> dict[str, CaDoc]:
    by_name: dict[str, CaDoc] = {}
    for doc in docs:
        by_name.setdefault(doc.name, doc)
    return by_name


def _check_duplicate_names(docs: Sequence[CaDoc]) -> Iterable[Diagnostic]:
    """A name is a publication directory, so two CAs with one name would overwrite each other."""
    groups: dict[str, list[CaDoc]] = {}
    for doc in docs:
        groups.setdefault(doc.name, []).append(doc)
    for name, group in groups.items():
        if len(group) < 2:
            continue
        for doc in group:
            others = ", ".join(other.where() for other in group if other is not doc)
            yield diag(
                doc.source,
                ("name",),
                f"CA name '{name}' is also used in {others}",
                "CA names must be unique: rename one of them",
            )


def _check_trust_anchors(
    docs: Sequence[CaDoc], broken: Sequence[BrokenCa], cas_dir: Path
) -> Iterable[Diagnostic]:
    """Exactly one root: the trust anchor relying parties are configured with, or -- for a CA run
    under a registry -- the one CA an external parent certifies (relying parties then start from the
    registry's trust anchor)."""
    anchors = [doc for doc in docs if doc.spec.trust_anchor]
    upstream = [doc for doc in docs if doc.spec.upstream is not None]
    for extra in upstream[1:]:
        yield diag(
            extra.source,
            ("parent",),
            f"CA '{extra.name}' is a second CA under an external parent; '{upstream[0].name}' "
            f"({upstream[0].where()}) already is one",
            "one CA per desired state is certified by an external parent: give this CA a local parent, or "
            "keep it in a desired state of its own",
        )
    if upstream:
        for anchor in anchors:
            yield diag(
                anchor.source,
                ("trust_anchor",),
                f"CA '{anchor.name}' is a trust anchor, and '{upstream[0].name}' ({upstream[0].where()}) "
                "is certified by an external parent",
                "a desired state is either its own trust anchor or a hierarchy under an external parent: "
                "remove 'trust_anchor: true' and give this CA a parent, or keep it in a desired state of "
                "its own",
            )
        return
    for extra in anchors[1:]:
        yield diag(
            extra.source,
            ("trust_anchor",),
            f"CA '{extra.name}' is a second trust anchor; '{anchors[0].name}' ({anchors[0].where()}) "
            "already is one",
            "there must be exactly one: give this CA a 'parent:' and remove 'trust_anchor: true'",
        )
    if not anchors and docs and not any(b.trust_anchor for b in broken):
        yield Diagnostic(
            cas_dir,
            1,
            1,
            "no CA is the trust anchor",
            "mark exactly one CA, the one without a parent, with 'trust_anchor: true'",
        )


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'online'? "`` when something close exists, else nothing."""
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _check_parents(
    docs: Sequence[CaDoc], by_name: Mapping[str, CaDoc], broken_names: set[str]
) -> Iterable[Diagnostic]:
    """A trust anchor has no parent; every other CA has one that exists."""
    for doc in docs:
        spec = doc.spec
        if spec.trust_anchor and spec.parent is not None:
            written = spec.local_parent or "..."
            yield diag(
                doc.source,
                ("parent",),
                f"trust anchor '{spec.name}' cannot have a parent",
                f"remove 'parent: {written}', or 'trust_anchor: true' if this is not the trust anchor",
            )
        elif spec.repository is not None and spec.upstream is None:
            yield diag(
                doc.source,
                ("repository",),
                f"CA '{spec.name}' names a remote repository but no external parent",
                "a remote repository goes with a CA certified by an external parent (parent: {response: "
                "...}); CAs below it publish there too: remove 'repository:' here",
            )
        elif not spec.trust_anchor and spec.parent is None:
            yield diag(
                doc.source,
                ("name",),
                f"CA '{spec.name}' has no parent",
                "add 'parent: <name of the CA above it>', or 'trust_anchor: true' if it is the trust anchor",
                key=True,
            )
        elif (
            (parent := spec.local_parent) is not None and parent not in by_name and parent not in broken_names
        ):
            known = sorted(by_name)
            yield diag(
                doc.source,
                ("parent",),
                f"parent '{parent}' of CA '{spec.name}' is not defined in any CA file",
                f"{_did_you_mean(parent, known)}known CAs: {', '.join(known)}",
            )


def _parent_graph(by_name: Mapping[str, CaDoc]) -> dict[str, str]:
    """Child -> parent edges between CAs that loaded; a trust anchor's stray parent is not an edge."""
    return {
        name: parent
        for name, doc in by_name.items()
        if (parent := doc.spec.local_parent) is not None and not doc.spec.trust_anchor and parent in by_name
    }


def find_cycles(parent_of: Mapping[str, str]) -> list[list[str]]:
    """Every parent cycle once, each listed from its alphabetically first member, child to parent."""
    done: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(parent_of):
        path: list[str] = []
        node = start
        while node in parent_of and node not in done and node not in path:
            path.append(node)
            node = parent_of[node]
        if node in path:
            cycle = path[path.index(node) :]
            first = cycle.index(min(cycle))
            cycles.append(cycle[first:] + cycle[:first])
        done.update(path)
    return cycles


def _check_cycles(by_name: Mapping[str, CaDoc]) -> Iterable[Diagnostic]:
    """A cycle of parents can never reach the trust anchor, so none of its CAs can be certified."""
    for cycle in find_cycles(_parent_graph(by_name)):
        for i, name in enumerate(cycle):
            doc = by_name[name]
            if len(cycle) == 1:
                message = f"CA '{name}' names itself as its parent"
            else:
                rotated = cycle[i:] + cycle[:i] + [name]
                message = f"CA '{name}' is its own ancestor: {' -> '.join(rotated)}"
            yield diag(
                doc.source,
                ("parent",),
                message,
                "every chain of parents must end at the trust anchor; change one of these parents",
            )


def _item_sets(doc: CaDoc) -> Iterable[tuple[Loc, str, AsnSet | IpSet]]:
    """Each resource item as written, with its key path, so overclaims point at the exact entry."""
    return _resource_items(doc.spec.resources, ("resources",))


def _outside(item: AsnSet | IpSet, parent: Resources) -> AsnSet | IpSet:
    """The part of ``item`` that ``parent`` does not hold."""
    if isinstance(item, AsnSet):
        return item.subtract(parent.asn)
    return item.subtract(parent.ip(item.afi))


def _check_containment(docs: Sequence[CaDoc], by_name: Mapping[str, CaDoc]) -> Iterable[Diagnostic]:
    """A CA can only be certified for resources its parent holds (RFC 6487 §7.2)."""
    for doc in docs:
        parent_name = doc.spec.local_parent
        if doc.spec.trust_anchor or parent_name is None or parent_name not in by_name:
            continue
        parent = by_name[parent_name]
        held = parent.resources
        for loc, written, item in _item_sets(doc):
            over = _outside(item, held)
            if not over:
                continue
            part = "" if over == item else f" (part of {written})"
            yield diag(
                doc.source,
                loc,
                f"{over}{part} is not held by parent CA '{parent_name}'",
                f"remove it here, or add it to '{parent_name}' in {display_path(parent.source.path)}",
            )


def _check_holds_something(doc: CaDoc) -> Iterable[Diagnostic]:
    """An RPKI certificate must carry some resources (RFC 6487 §4.8.10-11)."""
    if doc.resources:
        return
    if doc.spec.trust_anchor:
        hint = 'a trust anchor usually holds all: asn ["0-4294967295"], ipv4 [0.0.0.0/0], ipv6 ["::/0"]'
    else:
        hint = "a resource certificate must hold at least one AS number or prefix"
    yield diag(doc.source, ("resources",), f"CA '{doc.name}' holds no resources", hint, key=True)


def _check_signer(doc: CaDoc, settings: SettingsDoc | None) -> Iterable[Diagnostic]:
    """The CA's key must live somewhere rpki.yaml knows about (unchecked if rpki.yaml itself is broken);
    only the trust anchor may be offline: the CAs below it renew every day."""
    if settings is None:
        return
    found = settings.spec.signers.get(doc.spec.signer)
    if found is not None and found.type == "offline" and doc.spec.upstream is not None:
        yield diag(
            doc.source,
            ("signer",),
            f"signer '{doc.spec.signer}' is offline, and a CA under an external parent signs online",
            "its BPKI identity signs every exchange with the parent and its manifests renew daily: use a "
            "file or pkcs11 signer",
        )
        return
    if found is not None and found.type == "offline" and not doc.spec.trust_anchor:
        yield diag(
            doc.source,
            ("signer",),
            f"signer '{doc.spec.signer}' is offline, and only the trust anchor can be offline",
            "CAs below the trust anchor renew their manifests and CRLs daily: use a file or pkcs11 signer",
        )
        return
    if found is not None and found.type == "offline":
        for key, entries, problem, fix in (
            ("roas", doc.spec.roas, "issue ROAs: they", "move these ROAs to a CA below the trust anchor"),
            (
                "aspas",
                doc.spec.aspas,
                "issue ASPAs: they",
                "move these ASPAs to a CA below the trust anchor that holds their customer ASes",
            ),
            (
                "routers",
                doc.spec.routers,
                "certify router keys: their certificates",
                "move these routers to a CA below the trust anchor that holds their AS numbers",
            ),
        ):
            if entries:
                why = f"an offline trust anchor cannot {problem} would wait for the offline signer"
                yield diag(doc.source, (key,), why, fix, key=True)
    if found is not None:
        return
    known = sorted(settings.spec.signers)
    hint = f"{_did_you_mean(doc.spec.signer, known)}signers in {display_path(settings.source.path)}: "
    hint += ", ".join(known) or "none"
    if "signer" in doc.spec.model_fields_set:
        yield diag(doc.source, ("signer",), f"signer '{doc.spec.signer}' is not defined in rpki.yaml", hint)
    else:
        yield diag(
            doc.source,
            ("name",),
            f"CA '{doc.name}' uses signer '{doc.spec.signer}' (the default), which rpki.yaml does not define",
            hint,
            key=True,
        )


def _check_roas(doc: CaDoc) -> Iterable[Diagnostic]:
    """max_length in range, prefix held by the CA, and no (asn, prefix) twice."""
    held = doc.resources
    seen: dict[tuple[int, IPNetwork], int] = {}
    for i, roa in enumerate(doc.spec.roas):
        yield from _check_max_length(doc, i)
        if held.holds_prefix(roa.prefix):
            outside = None
        else:
            outside = Resources.of_prefixes([roa.prefix]).subtract(held)
        if outside:
            part = "" if outside == Resources.of_prefixes([roa.prefix]) else f" ({outside} of it)"
            yield diag(
                doc.source,
                ("roas", i, "prefix"),
                f"ROA prefix {roa.prefix}{part} is not held by CA '{doc.name}'",
                f"its IPv{roa.prefix.version} resources are: {held.ip(roa.prefix.version)}; "
                "add the prefix to them or fix the ROA",
            )
        first = seen.setdefault((roa.asn, roa.prefix), i)
        if first != i:
            line, _ = doc.source.position(("roas", first))
            yield diag(
                doc.source,
                ("roas", i),
                f"duplicate ROA for AS{roa.asn} {roa.prefix} (first at line {line})",
                "keep one entry, with the larger max_length",
            )


def _check_aspas(doc: CaDoc) -> Iterable[Diagnostic]:
    """The customer AS held by the CA and named by one entry only, and the providers as the ASPA profile
    wants them (``aspa.problems``, which the decoder applies too); their order is free, the model sorts.
    As with ROAs, a CA under an external parent is checked against the resources its YAML expects."""
    seen: dict[int, int] = {}
    for i, entry in enumerate(doc.spec.aspas):
        yield from _check_aspa_customer(doc, i)
        first = seen.setdefault(entry.customer, i)
        if first != i:
            line, _ = doc.source.position(("aspas", first))
            yield diag(
                doc.source,
                ("aspas", i, "customer"),
                f"a second ASPA for customer AS{entry.customer} in CA '{doc.name}' (first at line {line})",
                "a CA signs one ASPA per customer AS: merge their providers into one entry",
            )
        found = list(_check_aspa_providers(doc, i))
        yield from found
        # Whatever else the profile refuses (the rules above cover all of it today) is still reported.
        wrong = aspa.problems(entry.customer, tuple(sorted(entry.providers)))
        if wrong and not found and entry.customer != 0:
            yield diag(
                doc.source,
                ("aspas", i),
                f"ASPA of AS{entry.customer}: " + "; ".join(wrong),
                "fix the entry as said",
            )


def _check_aspa_customer(doc: CaDoc, index: int) -> Iterable[Diagnostic]:
    customer = doc.spec.aspas[index].customer
    at = ("aspas", index, "customer")
    if customer == 0:
        yield diag(
            doc.source,
            at,
            f"ASPA: {aspa.problems(0, (1,))[0]}",
            "name the AS whose providers these are; an AS with no provider lists AS0 alone as providers",
        )
        return
    held = doc.resources.asn
    if not held.contains(AsnSet.of([(customer, customer)])):
        yield diag(
            doc.source,
            at,
            f"ASPA customer AS{customer} is not held by CA '{doc.name}'",
            f"its AS resources are: {held}; add AS{customer} to them, or declare the ASPA in the CA that "
            "holds it",
        )


def _check_aspa_providers(doc: CaDoc, index: int) -> Iterable[Diagnostic]:
    """Each provider's problem at that provider; a problem of the whole list at ``providers``."""
    entry = doc.spec.aspas[index]
    customer, providers = entry.customer, entry.providers
    at: Loc = ("aspas", index, "providers")
    if not providers:
        yield diag(
            doc.source,
            at,
            f"the ASPA of AS{customer} lists no providers",
            "list the ASes it sends its routes up to, or AS0 alone for an AS with no upstream",
        )
        return
    if len(providers) > aspa.MAX_PROVIDERS:
        yield diag(
            doc.source,
            at,
            f"the ASPA of AS{customer} lists {len(providers)} providers, more than the {aspa.MAX_PROVIDERS} "
            "every validator takes",
            "list only the ASes it sends its routes up to; an AS with no upstream lists AS0 alone",
        )
    first_at: dict[int, int] = {}
    for j, provider in enumerate(providers):
        first = first_at.setdefault(provider, j)
        if first != j:
            line, _ = doc.source.position((*at, first))
            yield diag(
                doc.source,
                (*at, j),
                f"provider AS{provider} is listed twice in the ASPA of AS{customer} (first at line {line})",
                "list each provider once",
            )
        elif provider == customer:
            yield diag(
                doc.source,
                (*at, j),
                f"the customer AS{customer} is listed among its own providers",
                "remove it: an ASPA lists the ASes its customer sends routes up to, never the customer",
            )
        elif provider == 0 and any(providers):
            yield diag(
                doc.source,
                (*at, j),
                f"AS0 is listed with other providers in the ASPA of AS{customer}",
                "AS0 says the AS has no provider, so it may only be listed alone: remove AS0 or the others",
            )


def _check_routers(doc: CaDoc) -> Iterable[Diagnostic]:
    """Each router's AS numbers: at least one, each held by the CA and listed once (each is certified
    for the key in a certificate of its own, RFC 8209 §3.1.3.5). The key file is read and checked with
    the other committed files (``routerkeys``)."""
    held = doc.resources.asn
    for i, entry in enumerate(doc.spec.routers):
        at: Loc = ("routers", i, "asns")
        if not entry.asns:
            yield diag(
                doc.source,
                at,
                f"router key {entry.key} lists no AS numbers",
                "list the AS numbers this router signs BGPsec updates for, each held by this CA",
            )
        first_at: dict[int, int] = {}
        for j, asn in enumerate(entry.asns):
            first = first_at.setdefault(asn, j)
            if first != j:
                line, _ = doc.source.position((*at, first))
                yield diag(
                    doc.source,
                    (*at, j),
                    f"AS{asn} is listed twice for router key {entry.key} (first at line {line})",
                    "list each AS number once",
                )
            elif asn == 0:
                yield diag(
                    doc.source,
                    (*at, j),
                    "AS0 cannot be certified for a router: no BGP speaker has AS0",
                    "list the AS numbers this router signs BGPsec updates for",
                )
            elif not held.contains(AsnSet.of([(asn, asn)])):
                yield diag(
                    doc.source,
                    (*at, j),
                    f"router AS{asn} is not held by CA '{doc.name}'",
                    f"its AS resources are: {held}; add AS{asn} to them, or declare the router in "
                    "the CA that holds it",
                )


def _check_max_length(doc: CaDoc, index: int) -> Iterable[Diagnostic]:
    """max_length lies between the prefix length and the address size (RFC 9582 §4.3.2)."""
    roa = doc.spec.roas[index]
    if roa.max_length is None:
        return
    length, bits = roa.prefix.prefixlen, roa.prefix.max_prefixlen
    if roa.max_length < length:
        yield diag(
            doc.source,
            ("roas", index, "max_length"),
            f"max_length {roa.max_length} is shorter than the prefix length of {roa.prefix}",
            f"use {length} to {bits}, or leave max_length out to mean {length}",
        )
    elif roa.max_length > bits:
        yield diag(
            doc.source,
            ("roas", index, "max_length"),
            f"max_length {roa.max_length} is longer than an IPv{roa.prefix.version} prefix can be",
            f"use {length} to {bits}",
        )


# --- ordering -------------------------------------------------------------------------------------------


def order_cas(docs: Sequence[CaDoc]) -> list[CaDoc]:
    """Trust anchor first, then parents before children, ties broken by name.

    Only called once the checks passed, so there is one trust anchor, no cycle and no unknown parent.
    """
    children: dict[str, list[str]] = {}
    by_name = {doc.name: doc for doc in docs}
    roots = []
    for doc in docs:
        if doc.spec.local_parent is None:
            roots.append(doc.name)
        else:
            children.setdefault(doc.spec.local_parent, []).append(doc.name)
    ready = sorted(roots)
    heapq.heapify(ready)
    ordered: list[CaDoc] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for child in children.get(name, ()):
            heapq.heappush(ready, child)
    return ordered
