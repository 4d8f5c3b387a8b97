"""rpkictl as a CA under a parent that lists two resource classes: a registry's front end
(``tests.upstream.two_class_parent``) answers as one parent, and certifies each class through a CA of
its own in the parent's rpkictl. The child signs each class under a CA of its own -- ``acme`` for the
first, ``acme_class-transfers`` for the second, each with a key, a certificate, a manifest and a CRL -- and
places each ROA in the class that covers it. Both generations of rpki-client and FORT, from the
parent's TAL over its rsync tree, must output exactly the parent's VRPs and the child's, with no
warning: after the first certification, after a ROA change in the second class (which changes nothing
of the first), after the parent takes the second class away (its VRPs go, the first class's stay), and
in each phase of a key roll of both CAs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler import layout
from reconciler.signers import FileSigner
from reconciler.upstream import state as stored
from tests.e2e.test_child_under_external_parent import Relying
from tests.helpers import Scratch, scratch_copy
from tests.serve.remote_child import approved_apply, oob_files, serve_process
from tests.upstream.child_world import (
    HANDLE,
    ChildCa,
    child_ca_file,
    child_objects,
    declare_child,
    make_child,
)
from tests.upstream.two_class_parent import TwoClassParent, two_class_parent

SECOND = "100.64.0.0/16"
TRANSFERS_CA = f"""\
name: transfers
parent: ta
resources:
  ipv4: [{SECOND}]
children:
  - handle: {HANDLE}-transfers
    request: children/{HANDLE}.xml
    resources: {{ipv4: [{SECOND}]}}
"""
RESOURCES = "{asn: [AS64500], ipv4: [203.0.113.0/24, 100.64.0.0/16, 198.51.100.0/24]}"
ROAS = """\
roas:
  - {asn: AS64500, prefix: 203.0.113.0/24}
  - {asn: AS64500, prefix: 100.64.0.0/24}
  - {asn: AS64500, prefix: 100.64.1.0/24}
  - {asn: AS64500, prefix: 198.51.100.0/24}
"""
FIRST = frozenset({(64500, "203.0.113.0/24", 24), (64500, "100.64.0.0/24", 24), (64500, "100.64.1.0/24", 24)})
CHANGED_ROAS = ROAS.replace("100.64.1.0/24}", "100.64.1.0/24, max_length: 25}")
CHANGED = (FIRST - {(64500, "100.64.1.0/24", 24)}) | {(64500, "100.64.1.0/24", 25)}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class _World:
    parent: Scratch
    child: ChildCa
    front: TwoClassParent
    relying: Relying


@contextmanager
def _two_classes(tmp_path: Path, validators: tuple[str, ...]) -> Iterator[_World]:
    """The parent with its second CA, serve, the registry's front end, and the child connected to it."""
    parent = scratch_copy(tmp_path / "parent")
    child = make_child(tmp_path / "child")
    declare_child(parent, child)
    parent.write("cas/transfers.yaml", TRANSFERS_CA)
    assert parent.apply(now()) is not None
    cas = {"online": HANDLE, "transfers": f"{HANDLE}-transfers"}
    with (
        serve_process(parent.repo, tmp_path / "serve.log") as served,
        two_class_parent(parent.repo, child, served.url, cas, tmp_path) as front,
    ):
        child.write("parents/online.xml", front.response)
        child.write("repositories/online.xml", oob_files(parent.repo, "online", HANDLE, served.url)[1])
        child.write(f"cas/{HANDLE}.yaml", child_ca_file(ROAS, RESOURCES))
        yield _World(parent, child, front, Relying(parent, validators))


def test_a_ca_under_a_parent_with_two_resource_classes(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    with _two_classes(tmp_path, (*validators, *current_validators)) as world:
        parent, child, front, relying = world.parent, world.child, world.front, world.relying

        # -- first certification: a certificate for each class, each CA its own point ------------------
        said = child.apply()
        assert front.asked == ["list", "issue online", "issue transfers", "list"], front.asked
        assert f"{HANDLE}_class-transfers, no certificate for our key in class transfers yet" in said, said
        assert "ROA AS64500 198.51.100.0/24-24" in said and "is not signed" in said, said
        objects = child_objects(parent)
        first = {path.split("/")[0] for path in objects}
        assert first == {HANDLE, f"{HANDLE}_class-transfers"}, sorted(objects)
        relying.see_exactly(FIRST, "first certification")
        plan = child.rpkictl("plan")
        assert "class transfers: entitled to 100.64.0.0/16" in plan.stdout, plan.stdout
        assert f"(our CA {HANDLE}_class-transfers)" in plan.stdout, plan.stdout
        status = child.rpkictl("status", "--format", "json")
        shown = json.loads(status.stdout)
        assert {ca["name"] for ca in shown["cas"]} >= {HANDLE, f"{HANDLE}_class-transfers"}, status.stdout
        assert [c["class_name"] for c in shown["external_parent"]["other_certificates"]] == ["transfers"]

        # -- a ROA change in the second class: nothing of the first class is sent ----------------------
        front.asked.clear()
        child.write(f"cas/{HANDLE}.yaml", child_ca_file(CHANGED_ROAS, RESOURCES))
        said = child.apply()
        assert front.asked == ["list"], front.asked
        assert "sent 3 publish and 0 withdraw in one message" in said, said  # ROA, manifest, CRL
        changed = child_objects(parent)
        assert {p: d for p, d in changed.items() if p.startswith(f"{HANDLE}/")} == {
            p: d for p, d in objects.items() if p.startswith(f"{HANDLE}/")
        }
        relying.see_exactly(CHANGED, "ROA change in the second class")

        # -- the parent takes the second class away: its VRPs go, the first class's stay ---------------
        parent.write("cas/transfers.yaml", TRANSFERS_CA[: TRANSFERS_CA.index("children:")])
        approved_apply(parent.repo, f"ca-revoke@{HANDLE}-transfers")
        said = child.apply()
        assert "ROA AS64500 100.64.0.0/24-24" in said and "is not signed" in said, said
        left = child_objects(parent)
        assert {path.split("/")[0] for path in left} == {HANDLE}, sorted(left)
        relying.see_exactly(frozenset({(64500, "203.0.113.0/24", 24)}), "second class taken away")


def test_a_key_roll_of_both_classes(
    validators: tuple[str, ...], current_validators: tuple[str, ...], tmp_path: Path
) -> None:
    """Raising ``key_generation`` rolls the key of the CA of each class: the parent certifies each new
    key in its class, and revokes each old one once what the new keys signed is published."""
    names = (HANDLE, f"{HANDLE}_class-transfers")
    with _two_classes(tmp_path, (*validators, *current_validators)) as world:
        child, front = world.child, world.front
        child.apply()
        path = child.repo / f"cas/{HANDLE}.yaml"
        path.write_text(path.read_text().replace(f"name: {HANDLE}\n", f"name: {HANDLE}\nkey_generation: 2\n"))
        front.asked.clear()
        said = child.apply()
        assert front.asked == ["list", "issue online", "issue transfers", "list"], front.asked
        kept = stored.load(child.root / "published", HANDLE)
        assert sorted((c.class_name, c.generation) for c in kept.staged) == [("online", 2), ("transfers", 2)]
        world.relying.see_exactly(FIRST, "staging", at=now())

        later = now() + timedelta(hours=25)
        assert world.parent.apply(later) is not None
        front.asked.clear()
        said = child.apply("--simulate-time", now=stamp(later))
        for name in names:
            assert f"key generation 1 of {name} revoked by parent registry" in said, said
        assert front.asked == ["list", "revoke online", "revoke transfers", "list"], front.asked
        kept = stored.load(child.root / "published", HANDLE)
        assert kept.staged == () and [c.generation for c in stored.active(kept)] == [2, 2]
        assert world.parent.apply(later + timedelta(minutes=1)) is not None
        world.relying.see_exactly(FIRST, "activated", at=later + timedelta(minutes=5))

        said = child.apply("--simulate-time", now=stamp(later + timedelta(hours=1)))
        signer = FileSigner(child.root / "keys")
        for name in names:
            assert signer.find_key(layout.key_label(name, 1)) is None, said
            assert signer.find_key(layout.key_label(name, 2)) is not None, said
        world.relying.see_exactly(FIRST, "cleanup", at=later + timedelta(hours=1, minutes=5))


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"
