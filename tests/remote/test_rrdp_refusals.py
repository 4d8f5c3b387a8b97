"""What a relying party refuses, refused: a file whose hash is not the notification's, a notification
that is not RRDP, paths that would leave the tree, bodies too big, hostile XML (entity expansion,
external entities). Each is a RemoteError that names the URI, and the copy read before is left as it
was."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.publish import rrdp
from reconciler.published import read, remote_rrdp
from reconciler.published.remote import RemoteCopy, RemoteError, fetch
from tests.helpers import later
from tests.remote.serving import ISP, NOTIFICATION, RSYNC_BASE, Served, tree_files

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real-world" / "rpki-client-regress" / "rrdp"


def snapshot_xml(session_id: str, serial: int, objects: list[tuple[str, bytes]]) -> bytes:
    parts = [f'<snapshot xmlns="{rrdp.NS}" version="1" session_id="{session_id}" serial="{serial}">\n']
    parts += [f'  <publish uri="{uri}">{base64.b64encode(d).decode()}</publish>\n' for uri, d in objects]
    parts.append("</snapshot>\n")
    return "".join(parts).encode()


def refused(served: Served, says: str) -> RemoteError:
    """Fetch (after a good one made the cache), expect a RemoteError saying ``says``, and check that the
    cache still holds the good copy, untouched, and is used as it was."""
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    return refused_after(served, good, says)


def refused_after(served: Served, good: RemoteCopy, says: str) -> RemoteError:
    files = tree_files(good.rsync_dir)
    (entry,) = served.cache.iterdir()
    state = (entry / "state.json").read_bytes()
    with pytest.raises(RemoteError) as caught:
        fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    message = str(caught.value)
    assert says in message, message
    assert "Traceback" not in message
    assert tree_files(good.rsync_dir) == files
    assert (entry / "state.json").read_bytes() == state
    assert sorted(p.name for p in entry.iterdir()) == sorted(["lock", "state.json", good.rsync_dir.name])
    return caught.value


def test_a_snapshot_whose_hash_is_not_the_notifications(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    current = served.notification()
    served.serve_notification(dataclasses.replace(current, session_id=str(uuid.uuid4()), deltas=()))
    snapshot = served.local(current.snapshot_uri)
    snapshot.write_bytes(snapshot.read_bytes().replace(b"</snapshot>", b"</snapshot> "))
    error = refused_after(served, good, current.snapshot_uri)
    assert "SHA-256" in str(error) and "not " + current.snapshot_hash in str(error)


def test_a_delta_whose_hash_is_not_the_notifications(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    served.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert served.scratch.apply(later(1)) is not None
    (delta,) = served.notification().deltas
    served.local(delta.uri).write_bytes(served.local(delta.uri).read_bytes() + b"\n")
    error = refused_after(served, good, delta.uri)
    assert "SHA-256" in str(error)
    assert "snapshot.xml" not in served.requested()[2:]


def test_a_delta_that_does_not_fit_the_cache_sends_back_to_the_snapshot(served: Served) -> None:
    """A replacement naming another hash than the cached object's: the snapshot is read instead."""
    fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    served.scratch.edit(ISP, "max_length: 26", "max_length: 25")
    assert served.scratch.apply(later(1)) is not None
    current = served.notification()
    (delta,) = current.deltas
    data = served.local(delta.uri).read_bytes()
    head, found, tail = data.partition(b' hash="')
    assert found, "the delta replaces nothing: the test proves nothing"
    forged = head + found + b"0" * 64 + tail[64:]
    served.local(delta.uri).write_bytes(forged)
    listed = rrdp.DeltaRef(delta.serial, delta.uri, hashlib.sha256(forged).hexdigest())
    served.serve_notification(dataclasses.replace(current, deltas=(listed,)))
    before = len(served.server.requests)
    copy = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    assert served.requested(before) == ["notification.xml", "delta.xml", "snapshot.xml"]
    assert tree_files(copy.rsync_dir) == read(served.scratch.rsync).files


def _notification_text(served: Served, change: Callable[[str], str]) -> None:
    path = served.rrdp_dir / "notification.xml"
    path.write_text(change(path.read_text()))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda n: dataclasses.replace(n, session_id="not-a-uuid"), "session_id 'not-a-uuid' is not a UUID"),
        (
            lambda n: dataclasses.replace(n, snapshot_uri=n.snapshot_uri.replace("https:", "http:")),
            "is not an https URL",
        ),
        (
            lambda n: dataclasses.replace(n, snapshot_uri=n.snapshot_uri.replace("rpki.", "evil.")),
            "is not on the notification's host",
        ),
        (lambda n: dataclasses.replace(n, serial=0), "serial '0' is not a positive integer"),
    ],
)
def test_a_notification_out_of_form(
    served: Served, change: Callable[[rrdp.Notification], rrdp.Notification], says: str
) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    served.serve_notification(change(served.notification()))
    error = refused_after(served, good, says)
    assert NOTIFICATION in str(error)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        (RSYNC_BASE + "../etc/passwd", "'..' segment"),
        (RSYNC_BASE + "members//x.roa", "empty, '.' or '..' segment"),
        (RSYNC_BASE + "./x.roa", "'..' segment"),
        (RSYNC_BASE + "a\\b.roa", "backslash"),
        (RSYNC_BASE + "/".join(["d"] * 12) + "/x.roa", "too deep"),
        (RSYNC_BASE + "x" * 300 + ".roa", "longer than 255 bytes"),
    ],
)
def test_an_object_path_that_could_leave_the_tree(served: Served, uri: str, says: str) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    objects = [(RSYNC_BASE + path, data) for path, data in read(served.scratch.rsync).files.items()]
    session = str(uuid.uuid4())
    served.serve_snapshot(snapshot_xml(session, 1, [*objects, (uri, b"x")]), session_id=session, serial=1)
    error = refused_after(served, good, says)
    assert repr(uri)[:60] in str(error)
    assert not (served.cache.parent / "etc").exists()


@pytest.mark.parametrize(
    ("objects", "says"),
    [
        ([(RSYNC_BASE + "a.cer", b"1"), (RSYNC_BASE + "a.cer", b"2")], "is published twice"),
        ([(RSYNC_BASE + "a", b"1"), (RSYNC_BASE + "a/b.roa", b"2")], "cannot be kept"),
        ([(RSYNC_BASE + "a.cer", b"")], "is published empty"),
    ],
)
def test_a_snapshot_that_cannot_be_a_tree(
    served: Served, objects: list[tuple[str, bytes]], says: str
) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    session = str(uuid.uuid4())
    served.serve_snapshot(snapshot_xml(session, 1, objects), session_id=session, serial=1)
    refused_after(served, good, says)


def test_a_snapshot_of_another_session(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    served.serve_snapshot(snapshot_xml(str(uuid.uuid4()), 1, []), session_id=str(uuid.uuid4()), serial=1)
    refused_after(served, good, "is not the notification's")


def test_content_that_is_not_base64(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    session = str(uuid.uuid4())
    data = snapshot_xml(session, 1, [(RSYNC_BASE + "a.cer", b"abc")]).replace(b"YWJj", b"Y*Jj")
    served.serve_snapshot(data, session_id=session, serial=1)
    refused_after(served, good, "is not base64")


def test_a_notification_too_big(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    monkeypatch.setattr(remote_rrdp, "MAX_NOTIFICATION_BYTES", 100)
    refused_after(served, good, "larger than 100 bytes")


def test_a_snapshot_too_big(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    current = served.notification()
    served.serve_notification(dataclasses.replace(current, session_id=str(uuid.uuid4()), deltas=()))
    monkeypatch.setattr(remote_rrdp, "MAX_SNAPSHOT_BYTES", 1000)
    error = refused_after(served, good, "larger than 1000 bytes")
    assert "snapshot.xml" in str(error)


def test_too_many_objects(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    session = str(uuid.uuid4())
    objects = [(RSYNC_BASE + f"{name}.cer", b"x") for name in "abc"]
    served.serve_snapshot(snapshot_xml(session, 1, objects), session_id=session, serial=1)
    monkeypatch.setattr(remote_rrdp, "MAX_OBJECTS", 2)
    refused_after(served, good, "more than 2 objects")


@pytest.mark.parametrize(
    ("fixture", "says"),
    [
        ("billion_lol.xml", "DTDForbidden"),
        ("xxe.xml", "DTDForbidden"),
        ("notification_xmlns.xml", "not an RRDP notification"),
        ("snapshot.xml", "not an RRDP notification"),
    ],
)
def test_hostile_or_foreign_xml_is_refused(served: Served, fixture: str, says: str) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    shutil.copyfile(FIXTURES / fixture, served.rrdp_dir / "notification.xml")
    refused_after(served, good, says)


def test_deep_nesting_is_refused_early(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    deep = "<a>" * 50000 + "</notification>"
    _notification_text(served, lambda text: text.replace("</notification>", deep))
    refused_after(served, good, "unexpected element")


def test_a_real_world_notification_is_read_to_its_snapshot(served: Served) -> None:
    """rpki-client's regression notification (a real one, with many deltas) parses; its snapshot is on
    another host than the one it was fetched from, which relying parties refuse."""
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    shutil.copyfile(FIXTURES / "notification.xml", served.rrdp_dir / "notification.xml")
    refused_after(served, good, "is not on the notification's host")


def test_a_missing_notification_is_an_http_error(served: Served) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    (served.rrdp_dir / "notification.xml").unlink()
    error = refused_after(served, good, "HTTP 404")
    assert NOTIFICATION in str(error)


def test_an_untrusted_certificate_is_a_tls_error(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    error = refused_after(served, good, "TLS failed")
    assert "SSL_CERT_FILE" in str(error) and NOTIFICATION in str(error)


def test_an_unreachable_proxy_is_a_connection_error(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    good = fetch(NOTIFICATION, RSYNC_BASE, served.cache)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    refused_after(served, good, "https_proxy")
