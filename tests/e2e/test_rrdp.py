"""RRDP over real HTTPS: rpki-client and FORT fetch the notification, snapshot and deltas that apply
writes, from a TLS server on 127.0.0.1 that they reach as https://rpki.example.net/ through a CONNECT
proxy, trusting a test CA made for them alone.

The server's request log shows what each validator took: a new relying party (or one holding a
session it does not know) takes the snapshot; one holding an older serial of the session catches up
through the deltas (rpki-client; FORT 1.5 forgets RRDP state between runs and always takes the
snapshot).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.harness import HttpsAccess, validate_with_all
from tests.e2e.https import ConnectProxy, HttpsServer, ThrowawayCa
from tests.e2e.relying_parties import assert_accepts_exactly_the_yaml, write_tal
from tests.helpers import Scratch, scratch_copy
from tests.publish.test_rrdp import with_rrdp

ISP = "cas/members/example-isp.yaml"


class Served:
    def __init__(self, scratch: Scratch, server: HttpsServer, access: HttpsAccess) -> None:
        self.scratch, self.server, self.access = scratch, server, access

    def first_contact(self, validators: tuple[str, ...], tmp_path: Path) -> tuple[datetime, dict[str, Path]]:
        """Apply now and have each validator, with a new cache, fetch the snapshot; return the time and
        the caches, kept for the next runs."""
        start = datetime.now(UTC).replace(microsecond=0)
        self.scratch.apply(start)
        caches = {name: tmp_path / f"cache-{name}" for name in validators}
        first = self.validate(validators, caches, start)
        for name in validators:
            assert first[name] == ["notification.xml", "snapshot.xml"], (name, first[name])
        return start, caches

    def validate(
        self, validators: tuple[str, ...], caches: dict[str, Path], now: datetime
    ) -> dict[str, list[str]]:
        """Run each validator in turn; return the RRDP files each one fetched."""
        fetched: dict[str, list[str]] = {}
        for name in validators:
            start = len(self.server.requests)
            results = validate_with_all(
                write_tal(self.scratch),
                self.scratch.rsync,
                "rsync://rpki.example.net/repo/",
                now=now,
                validators=(name,),
                caches=caches,
                https=self.access,
            )
            assert_accepts_exactly_the_yaml(self.scratch, results)
            fetched[name] = [p.rsplit("/", 1)[-1] for p in self.server.requests[start:]]
        return fetched


@pytest.fixture
def served(tmp_path: Path, require_tool: object, validators: tuple[str, ...]) -> Iterator[Served]:
    assert callable(require_tool)
    require_tool("unshare")
    require_tool("openssl")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:  # rpki-client trusts the test CA only inside its own mount namespace
        pytest.fail(
            f"unshare --mount is not permitted here ({probe.stderr.strip()}); run as root", pytrace=False
        )
    scratch = with_rrdp(scratch_copy(tmp_path))
    ca = ThrowawayCa.create(tmp_path / "tls", "rpki.example.net")
    published = tmp_path / "published"
    published.mkdir()
    with HttpsServer(published, ca) as server, ConnectProxy(server.port) as proxy:
        yield Served(scratch, server, HttpsAccess(proxy.url, ca.bundle, ca.ca_dir))


def test_both_validators_take_the_snapshot_then_catch_up_through_deltas(
    served: Served, validators: tuple[str, ...], tmp_path: Path
) -> None:
    scratch = served.scratch
    start, caches = served.first_contact(validators, tmp_path)
    for minutes, (old, new) in enumerate(
        [("max_length: 26", "max_length: 25"), ("  - {asn: AS0, prefix: 192.0.2.128/25}\n", "")], start=1
    ):
        scratch.edit(ISP, old, new)
        scratch.apply(start + timedelta(minutes=minutes))
    later = start + timedelta(minutes=3)
    caught_up = served.validate(validators, caches, later)
    for name in validators:
        if name == "fort":
            # FORT 1.5 keeps RRDP sessions and serials in memory only (NICMx/FORT-validator#79, fixed
            # in 1.6): each standalone run starts from the snapshot, which must be current.
            assert caught_up[name] == ["notification.xml", "snapshot.xml"], caught_up[name]
            continue
        assert "snapshot.xml" not in caught_up[name], (name, caught_up[name])
        assert caught_up[name].count("delta.xml") == 2, (name, caught_up[name])


def test_a_new_session_sends_validators_back_to_the_snapshot(
    served: Served, validators: tuple[str, ...], tmp_path: Path
) -> None:
    scratch = served.scratch
    start, caches = served.first_contact(validators, tmp_path)
    shutil.rmtree(scratch.root / "published")  # the publication point is lost, RRDP state and all ...
    scratch.apply(start + timedelta(minutes=5))  # ... and rebuilt from Git and the keys
    again = served.validate(validators, caches, start + timedelta(minutes=6))
    for name in validators:
        assert again[name] == ["notification.xml", "snapshot.xml"], (name, again[name])
