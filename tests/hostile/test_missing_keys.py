"""A CA whose certificate is published and whose key its signer cannot find is a signer error, never a
plan to create a new key: an unmounted key directory or a wrong token must not re-key the tree (the trust
anchor's key is in every relying party's TAL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import engine
from reconciler.plan.diff import make_plan
from reconciler.plan.model import Action
from reconciler.rpki import cert as rc
from reconciler.rpki import tal
from reconciler.signers import MissingKeyError, SignerError
from tests.helpers import Scratch, later, scratch_copy
from tests.test_cli import rpkictl

ISP = "cas/members/example-isp.yaml"


@pytest.fixture
def unmounted(tmp_path: Path) -> Scratch:
    """The example applied, then its key directory left empty (an unmounted volume's mount point)."""
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    keys = scratch.root / "keys"
    keys.rename(scratch.root / "keys.offline")
    keys.mkdir(mode=0o700)
    return scratch


def test_an_unmounted_key_directory_is_a_signer_error_not_a_plan(unmounted: Scratch) -> None:
    with pytest.raises(MissingKeyError) as raised:
        unmounted.plan(later(1))
    message = str(raised.value)
    assert isinstance(raised.value, SignerError)
    assert "signer 'default'" in message
    assert str(unmounted.root / "keys" / "ta.pem") in message
    assert "never re-created" in message
    assert "ta.cer" in message  # what says the key was published


def test_apply_on_an_unmounted_key_directory_creates_no_key(unmounted: Scratch) -> None:
    ta_cer = (unmounted.rsync / "ta.cer").read_bytes()
    result = rpkictl("apply", str(unmounted.repo), "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "never re-created" in result.stderr
    assert list((unmounted.root / "keys").iterdir()) == []
    assert (unmounted.rsync / "ta.cer").read_bytes() == ta_cer


def test_a_single_lost_key_is_an_error_too(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    (scratch.root / "keys" / "example-isp.pem").unlink()
    with pytest.raises(MissingKeyError, match=r"example-isp.*online/example-isp\.cer.*key_generation"):
        scratch.plan(later(1))


def test_check_and_tal_read_the_published_keys_and_plan_no_new_one(unmounted: Scratch) -> None:
    """``check`` and ``tal`` need no key: they report what is published (its trust anchor key, its
    expiry), never a plan to create a key; what the signer lost is apply's to find (above)."""
    check = rpkictl("check", str(unmounted.repo))
    assert "signer" not in check.stdout and "cannot check" not in check.stdout, check.stdout
    printed = rpkictl("tal", str(unmounted.repo))
    assert printed.returncode == 0, printed.stderr
    ta_cer = rc.decode((unmounted.rsync / "ta.cer").read_bytes())
    assert printed.stdout == tal.encode(("rsync://rpki.example.net/repo/ta.cer",), ta_cer.public_key)


def test_raising_key_generation_replaces_a_lost_key_on_purpose(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    scratch.apply()
    (scratch.root / "keys" / "example-isp.pem").unlink()
    scratch.edit(ISP, "parent: online\n", "parent: online\nkey_generation: 2\n")
    plan = scratch.plan(later(1))
    created = [(c.ca, c.generation) for c in plan.changes if c.action is Action.CREATE_KEY]
    assert created == [("example-isp", 2)]


def test_a_ca_never_published_gets_its_key(tmp_path: Path) -> None:
    scratch = scratch_copy(tmp_path)
    plan = scratch.plan()
    assert {c.ca for c in plan.changes if c.action is Action.CREATE_KEY} == {"ta", "online", "example-isp"}


def test_apply_never_creates_the_key_of_a_published_certificate(unmounted: Scratch) -> None:
    """A plan made without the check (an older plan, another caller) still cannot re-key: the executor
    refuses on its own."""
    workspace = engine.open_workspace(unmounted.repo)
    plan = make_plan(workspace.desired, workspace.published, {}, later(1))
    assert any(c.action is Action.CREATE_KEY and c.ca == "ta" for c in plan.changes)
    with pytest.raises(MissingKeyError):
        engine.apply(workspace, plan)
    assert list((unmounted.root / "keys").iterdir()) == []
