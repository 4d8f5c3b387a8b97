"""Property-based fuzzing of the RRDP reader: ``read_notification`` reads back the notification file from
the publication directory, which anyone who can write there may have replaced.

Inputs are notifications as the reconciler writes them, the real and hostile RRDP files of rpki-client's
regression suite (a billion laughs, an external entity), and generated XML -- deep nestings, huge
attributes, entity declarations, attributes of every shape -- mutated byte by byte; and entries that are
not regular files at all (a FIFO, a directory, a symbolic link, a file far too big). Whatever is there,
the reader returns a notification whose every field has the form RFC 8182 gives it, or None (a new session
starts); it never raises, never blocks, and stays within a bound on time and memory.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.publish import rrdp
from reconciler.publish.rrdp import NOTIFICATION, DeltaRef, Notification, notification_xml, read_notification
from tests.hostile.fuzzing import FUZZ, bounded, traced  # noqa: F401 - traced: a fixture this module uses

FIXTURES = Path(__file__).parent.parent / "fixtures" / "real-world" / "rpki-client-regress" / "rrdp"
REAL = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*.xml"))}
MEMORY_BOUND = 64 << 20
HEX = re.compile(r"[0-9a-f]{64}")


#: Every test here runs with Python's allocations traced (see ``_read``).
pytestmark = pytest.mark.usefixtures("traced")


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rrdp")


def _read(directory: Path, data: bytes) -> Notification | None:
    (directory / NOTIFICATION).write_bytes(data)
    found = bounded(lambda: read_notification(directory), MEMORY_BOUND)
    _check(found)
    return found


def _check(found: Notification | None) -> None:
    """What a notification read back may be: None, or one whose fields all have their RFC 8182 form."""
    if found is None:
        return
    assert str(uuid.UUID(found.session_id)) == found.session_id
    assert 1 <= found.serial < 2**64
    assert HEX.fullmatch(found.snapshot_hash)
    assert isinstance(found.snapshot_uri, str)
    serials = [delta.serial for delta in found.deltas]
    assert len(set(serials)) == len(serials)
    for delta in found.deltas:
        assert 1 <= delta.serial <= found.serial and HEX.fullmatch(delta.hash) and isinstance(delta.uri, str)


_HASHES = st.binary(min_size=32, max_size=32).map(bytes.hex)
NOTIFICATIONS = st.builds(
    lambda session, serial, uri, digest, deltas: Notification(
        str(session),
        serial,
        uri,
        digest,
        tuple(DeltaRef(max(1, serial - i), f"{uri}/d{i}.xml", h) for i, h in enumerate(deltas)),
    ),
    st.uuids(version=4),
    st.integers(1, 2**63),
    st.sampled_from(["https://rpki.example.net/rrdp/s.xml", 'https://x/"&<.xml', ""]),
    _HASHES,
    st.lists(_HASHES, max_size=3),
)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Bytes flipped, cut, inserted or repeated."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(out)))
        operation = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if operation == "flip" and where < len(out):
            out[where] ^= 1 << draw(st.integers(0, 7))
        elif operation == "cut":
            del out[where:]
        elif operation == "insert":
            out[where:where] = draw(
                st.one_of(
                    st.binary(min_size=1, max_size=8),
                    st.sampled_from(
                        [b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"<![CDATA[", b"\xff\xfe", b"\0"]
                    ),
                )
            )
        else:
            del out[where : where + draw(st.integers(1, 16))]
    return bytes(out)


def _attribute_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "0", "-1", "+5", " 5", "5_000", "1e3", "0x10", str(2**64), "9" * 5000]),
        st.sampled_from(
            ["{8fe05c2e-047d-49e7-8398-cd4250a572b1}", "urn:uuid:8fe05c2e-047d-49e7-8398-cd4250a572b1"]
        ),
        st.sampled_from(["AE52F78BCB1B258A1DA924122971B0FDDFCE4C01B2B2DBA59C9B28EF1D94C02B", "zz" * 32]),
        st.text(max_size=30).filter(lambda t: '"' not in t and "<" not in t and "&" not in t),
    )


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    """A notification element with attributes of every shape, children in any order and number."""
    names = ["version", "session_id", "serial", "uri", "hash", "xmlns"]
    attributes = draw(st.dictionaries(st.sampled_from(names), _attribute_values(), max_size=6))
    if draw(st.booleans()):
        attributes["xmlns"] = rrdp.NS
    children = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["snapshot", "delta", "publish", "notification"]),
                st.dictionaries(st.sampled_from(names), _attribute_values(), max_size=4),
            ),
            max_size=4,
        )
    )
    text = "".join(
        f"<{name} " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>" for name, attrs in children
    )
    head = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    return f"<notification {head}>{text}</notification>".encode()


@FUZZ
@given(notification=NOTIFICATIONS)
def test_what_apply_writes_reads_back(directory: Path, notification: Notification) -> None:
    """The round trip the fuzzing below starts from: what is written is what is read."""
    assert _read(directory, notification_xml(notification)) == notification


STARTS = st.one_of(NOTIFICATIONS.map(notification_xml), st.sampled_from(sorted(REAL.values())))


@FUZZ
@given(data=STARTS.flatmap(mutated))
@example(data=REAL["billion_lol.xml"])
@example(data=REAL["xxe.xml"])
@example(data=b"<notification>" * 200_000)
@example(data=b"<a>" * 100_000 + b"</a>" * 100_000)
@example(data=b'<notification xmlns="http://www.ripe.net/rpki/rrdp" a="' + b"x" * 900_000 + b'"/>')
@example(data=b'<?xml version="1.0" encoding="UTF-7"?><notification/>')
def test_mutated_notifications(directory: Path, data: bytes) -> None:
    _read(directory, data)


@settings(FUZZ, max_examples=50)
@given(data=st.one_of(generated(), generated().flatmap(mutated), st.binary(max_size=400)))
def test_generated_xml(directory: Path, data: bytes) -> None:
    _read(directory, data)


def test_the_hostile_files_of_the_regression_suite_read_as_none(directory: Path) -> None:
    assert _read(directory, REAL["billion_lol.xml"]) is None
    assert _read(directory, REAL["xxe.xml"]) is None
    found = _read(directory, REAL["notification.xml"])
    assert found is not None and found.serial == 50550


def test_a_file_far_too_big_is_not_read(directory: Path) -> None:
    notification = notification_xml(Notification(str(uuid.uuid4()), 1, "https://x/s.xml", "0" * 64))
    padded = notification.replace(b"</notification>", b" " * rrdp.MAX_NOTIFICATION_BYTES + b"</notification>")
    assert _read(directory, notification) is not None
    assert _read(directory, padded) is None


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink", "dangling"])
def test_an_entry_that_is_not_a_regular_file_reads_as_none(tmp_path: Path, kind: str) -> None:
    """Never blocks (a FIFO no one writes to), never follows a link out of the directory."""
    target = tmp_path / "elsewhere.xml"
    target.write_bytes(notification_xml(Notification(str(uuid.uuid4()), 1, "https://x/s.xml", "0" * 64)))
    path = tmp_path / NOTIFICATION
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        path.symlink_to(target)
    else:
        path.symlink_to(tmp_path / "missing")
    result: list[Notification | None] = []
    reader = threading.Thread(target=lambda: result.append(read_notification(tmp_path)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive() and kind == "fifo":
        with path.open("wb"):  # release the blocked reader before failing
            pass
    assert result == [None]


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("serial", "-1"),
        ("serial", "0"),
        ("serial", "5_000"),
        ("serial", str(2**64)),
        ("session_id", "{8fe05c2e-047d-49e7-8398-cd4250a572b1}"),
        ("hash", "zz" * 32),
        ("hash", "ab"),
    ],
)
def test_a_field_not_in_its_rfc_8182_form_reads_as_none(directory: Path, attribute: str, value: str) -> None:
    good = {"serial": "7", "session_id": "8fe05c2e-047d-49e7-8398-cd4250a572b1", "hash": "0" * 64}
    fields = {**good, attribute: value}
    text = (
        f'<notification xmlns="{rrdp.NS}" version="1" session_id="{fields["session_id"]}" '
        f'serial="{fields["serial"]}"><snapshot uri="https://x/s.xml" hash="{fields["hash"]}"/>'
        "</notification>"
    )
    assert _read(directory, text.replace(f'"{value}"', f'"{good[attribute]}"').encode()) is not None
    assert _read(directory, text.encode()) is None
