"""A key roll validated by rpki-client and FORT at every phase, with the rolling CA's keys in an HSM.

example-isp's keys live in a throw-away SoftHSM2 token. Raising its key_generation is walked with
``now`` through staging, activation and cleanup; after each apply both validators -- keeping their
caches between runs, as deployed ones do -- accept the publication point and output exactly the VRPs
of the YAML, which never change during the roll.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler import engine
from reconciler.plan.rollover import Phase
from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, validate, write_tal
from tests.helpers import scratch_copy
from tests.signers.test_pkcs11 import (  # noqa: F401  # fixtures, used by name
    HsmToken,
    hsm_token_fixture,
    softhsm_fixture,
)

ISP = "cas/members/example-isp.yaml"


def test_a_key_roll_in_an_hsm_is_accepted_at_every_phase(
    hsm_token: HsmToken, validators: tuple[str, ...], tmp_path: Path
) -> None:
    scratch = scratch_copy(tmp_path)
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + hsm_token.yaml_entry())
    scratch.edit(ISP, "parent: online\n", "parent: online\nsigner: hsm\n")
    start = datetime.now(UTC).replace(microsecond=0)
    assert scratch.apply(start) is not None
    tal = write_tal(scratch)
    caches = {name: tmp_path / f"cache-{name}" for name in validators}
    assert_accepts_exactly_the_yaml(scratch, validate(scratch, validators, caches=caches, tal=tal))
    vrps = scratch.vrps()

    scratch.edit(ISP, "signer: hsm\n", "signer: hsm\nkey_generation: 2\n")
    phases = []
    for hours in (1, 18, 26, 27):
        at = start + timedelta(hours=hours)
        plan = scratch.plan(at)
        phases.append(plan.key_plans["example-isp"].phase)
        assert plan.gates == () and not plan.vrps_added and not plan.vrps_removed
        assert scratch.apply(at) is not None
        left = scratch.plan(at).changes  # converged, but for the old key's destruction after activation
        assert [c.action.value for c in left] == (["destroy-key"] if phases[-1] is Phase.ACTIVATING else [])
        results = validate(scratch, validators, now=at, caches=caches, tal=tal)
        assert_accepts_exactly_the_yaml(scratch, results)
        assert scratch.vrps() == vrps
    assert phases == [Phase.STAGING, Phase.STAGING, Phase.ACTIVATING, Phase.CLEANUP]

    # Both keys were made in the token; the retired one is gone from it, the new one signs.
    with hsm_token.signer() as signer:
        assert signer.find_key("example-isp") is None
        assert signer.find_key("example-isp_g2") is not None
    published = engine.open_workspace(scratch.repo).published
    assert "online/example-isp_g2.cer" in published.files and "online/example-isp.cer" not in published.files
