"""Property-based fuzzing of every decoder of bytes read from outside: the published objects (certificates,
CRLs, signed objects, ROA and manifest eContents, RFC 3779 extension values), trust anchor locators, the
offline ceremony's signing requests, and the rows of the object memo.

Inputs are real objects -- signed by the reconciler in a scratch apply, and published by real CAs
(tests/fixtures/real-world) -- with bits flipped, bytes cut off, inserted, deleted and appended, and length
fields rewritten, plus arbitrary bytes and hostile nestings. Whatever the input, a decoder returns a
result or raises its module's documented error, never another exception; each example runs under a
deadline and within a bound on the memory Python allocates (``tracemalloc``). Whatever decodes must stop
decoding once a byte is appended: nothing is ever read past the structure. The examples are derandomized,
so CI runs the same inputs every time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.offline import ceremony
from reconciler.offline.request import CeremonyError, SigningRequest, read_request, read_response
from reconciler.published import decoded, read
from reconciler.published.reader import PublishedState, Unreadable
from reconciler.rpki import cert, cms, crl, manifest, oids, rfc3779, roa, tal
from reconciler.signers.files import FileSigner
from tests.helpers import T0, scratch_copy
from tests.hostile import dertree, fuzzing
from tests.hostile.fuzzing import FUZZ, traced  # noqa: F401 - a fixture this module uses

FIXTURES = Path(__file__).parent.parent / "fixtures" / "real-world"
#: Python's allocations while one example is decoded; the inputs are at most a few tens of kilobytes.
MEMORY_BOUND = 32 << 20
#: Nestings no RPKI object has, deep enough to exhaust a recursive parser.
DEEP = [
    b"\x30\x80" * 5000 + b"\x00\x00" * 5000,
    b"\xa0\x80" * 20000,
    b"\x30\x84\xff\xff\xff\xff",
    b"\x30\x82\xff\xff" + b"\x30\x82\xff\xfb" * 2,
    b"\x04\x80\x04\x01\x00\x00\x00",
    b"\x1f\x80\x80\x80\x80\x80\x01\x00",
]

T = TypeVar("T")


#: Every test here runs with Python's allocations traced (see ``bounded``).
pytestmark = pytest.mark.usefixtures("traced")


def bounded(call: Callable[[], T]) -> T:
    """``call()``, within this module's memory bound."""
    return fuzzing.bounded(call, MEMORY_BOUND)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Real objects of each kind: the reconciler's own, and those of real CAs."""
    scratch = scratch_copy(tmp_path_factory.mktemp("fuzz"))
    assert scratch.apply(T0) is not None
    files = read(scratch.rsync).files
    found: dict[str, list[bytes]] = {kind: [] for kind in ("cer", "crl", "roa", "mft")}
    for path, data in sorted(files.items()):
        found[path.rsplit(".", 1)[-1]].append(data)
    for kind in found:
        found[kind] += [p.read_bytes() for p in sorted(FIXTURES.rglob(f"*.{kind}"))]
    found["signed"] = found["roa"] + found["mft"]
    found["roa-econtent"] = [_econtent(d) for d in found["roa"] if _econtent(d)]
    found["mft-econtent"] = [_econtent(d) for d in found["mft"] if _econtent(d)]
    found["ip"], found["as"] = [], []
    for data in found["cer"] + found["roa"]:
        try:
            x509 = cert.decode(data).cert if data in found["cer"] else cms.decode(data).ee.cert
        except ValueError:
            continue
        for kind, oid in (("ip", oids.IP_ADDR_BLOCKS), ("as", oids.AUTONOMOUS_SYS_IDS)):
            raw = cert._raw(x509, oid)  # the extension's value as published
            if raw is not None:
                found[kind].append(raw)
    assert all(found.values()), {k: len(v) for k, v in found.items()}
    return found


def _econtent(data: bytes) -> bytes:
    try:
        return cms.decode(data).econtent
    except ValueError:
        return b""


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A real object of ``kind`` with a length field rewritten, bits flipped, bytes cut, inserted or
    appended."""
    original = _SAMPLES[kind][draw(st.integers(0, len(_SAMPLES[kind]) - 1))]
    data = bytearray(original)
    fields = _LENGTHS.setdefault(original, dertree.length_fields(original))
    if fields and draw(st.booleans()):
        offset, size = fields[draw(st.integers(0, len(fields) - 1))]
        data[offset : offset + size] = draw(
            st.one_of(
                st.integers(0, 0x7F).map(lambda n: bytes((n,))),
                st.just(b"\x80"),  # indefinite
                st.just(b"\xff"),  # reserved
                st.binary(min_size=1, max_size=4).map(lambda b: bytes((0x80 | len(b),)) + b),
                st.binary(min_size=5, max_size=9).map(lambda b: bytes((0x80 | len(b),)) + b),
            )
        )
    for _ in range(draw(st.integers(0 if data != original else 1, 4))):
        where = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "cut", "insert", "delete", "append"]))
        if operation == "flip" and where < len(data):
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif operation == "cut":
            del data[where:]
        elif operation == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def inputs(kind: str) -> st.SearchStrategy[bytes]:
    """Mutations of the samples of ``kind`` (read once the fixture has made them), and arbitrary bytes."""
    return st.one_of(mutated(kind), st.binary(max_size=512))


_SAMPLES: dict[str, list[bytes]] = {}
_LENGTHS: dict[bytes, list[tuple[int, int]]] = {}


@pytest.fixture(scope="module", autouse=True)
def shared_samples(samples: dict[str, list[bytes]]) -> None:
    """The strategies draw from module state: hypothesis runs them outside of pytest's fixtures."""
    _SAMPLES.update(samples)
    _SAMPLES["spki"] = [
        cert.decode(samples["cer"][0]).public_key.public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
    ]


Decoder = Callable[[bytes], object]
DECODERS: dict[str, tuple[Decoder, tuple[type[Exception], ...]]] = {
    "cer": (cert.decode, (cert.CertificateError,)),
    "crl": (crl.decode, (crl.CrlError,)),
    "signed": (cms.decode, (cms.CmsError, cert.CertificateError)),
    "roa-econtent": (roa.decode, (roa.RoaError,)),
    "mft-econtent": (manifest.decode, (manifest.ManifestError,)),
    "ip": (lambda data: rfc3779.decode(data, None), (rfc3779.ResourceEncodingError,)),
    "as": (lambda data: rfc3779.decode(None, data), (rfc3779.ResourceEncodingError,)),
}


def _check(kind: str, data: bytes) -> None:
    decoder, errors = DECODERS[kind]
    try:
        bounded(lambda: decoder(data))
    except errors:
        return
    with pytest.raises(errors, match="trailing data"):
        decoder(data + b"\x00")


def _fuzz(kind: str, examples: int = 80) -> Callable[[], None]:
    """A test of the decoder of ``kind`` on hostile inputs."""

    @settings(FUZZ, max_examples=examples)
    @given(data=inputs(kind))
    def run(data: bytes) -> None:
        _check(kind, data)

    for hostile in DEEP:
        run = example(data=hostile)(run)
    return run


test_certificates = _fuzz("cer")
test_crls = _fuzz("crl")
test_signed_objects = _fuzz("signed", examples=60)
test_roa_econtents = _fuzz("roa-econtent")
test_manifest_econtents = _fuzz("mft-econtent")
test_ip_resources = _fuzz("ip")
test_as_resources = _fuzz("as")


@FUZZ
@given(kind=st.sampled_from(["cer", "crl", "roa", "mft"]), data=st.data())
def test_published_state_never_raises(kind: str, data: st.DataObject) -> None:
    """What plan and check read: a decoded object or ``Unreadable``, never an exception."""
    blob = data.draw(inputs(kind))
    path = f"ca/x.{kind}"
    state = PublishedState(files={path: blob})
    reader = {"cer": state.certificate, "crl": state.crl, "roa": state.roa, "mft": state.manifest}[kind]
    found = bounded(lambda: reader(path))
    assert found is not None
    if isinstance(found, Unreadable):
        assert found.reason


@FUZZ
@given(
    key=inputs("spki"),
    uris=st.sampled_from(["rsync://rpki.test/ta.cer\n", "", "# c\nrsync://x/ta.cer\n", "\n\n"]),
)
def test_tals(key: bytes, uris: str) -> None:
    text = uris + "\n" + base64.b64encode(key).decode() + "\n"
    try:
        found = bounded(lambda: tal.decode(text))
    except tal.TalError:
        return
    assert found.public_key_der == key


#: Any JSON value, nested a little, with the numbers a hand-edited file can hold.
JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(["", "00", "zz", "2026-11-23T12:00:00", "2026-11-23T12:00:00+00:00", "9" * 5000]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value, the value itself included."""
    found = [prefix]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def edited_json(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one to three places replaced by arbitrary JSON (a hand-edited or damaged file)."""
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        value = _replaced(value, paths[draw(st.integers(0, len(paths) - 1))], draw(JSON))
    return value


@pytest.fixture(scope="module")
def rows(samples: dict[str, list[bytes]]) -> dict[str, list[tuple[decoded.Row, bytes]]]:
    """Memo rows of real objects, as ``published.reader`` keeps them (without kind and digest)."""
    found: dict[str, list[tuple[decoded.Row, bytes]]] = {"cer": [], "crl": [], "mft": []}
    for data in samples["cer"]:
        with contextlib.suppress(ValueError):
            found["cer"].append((decoded.certificate_row(cert.decode(data)), data))
    for data in samples["crl"]:
        with contextlib.suppress(ValueError):
            found["crl"].append((decoded.crl_row(crl.decode(data)), data))
    for data in samples["mft"]:
        with contextlib.suppress(ValueError):
            signed = cms.decode(data)
            row = decoded.manifest_row(signed, manifest.decode(signed.econtent), data)
            if row is not None:
                found["mft"].append((row, data))
    assert all(found.values())
    _ROWS.update(found)
    return found


_ROWS: dict[str, list[tuple[decoded.Row, bytes]]] = {}
REBUILD: dict[str, Callable[[decoded.Row, bytes], object]] = {
    "cer": decoded.certificate_from_row,
    "crl": decoded.crl_from_row,
    "mft": decoded.manifest_from_row,
}


@FUZZ
@given(kind=st.sampled_from(sorted(REBUILD)), data=st.data())
def test_memo_rows(rows: dict[str, list[tuple[decoded.Row, bytes]]], kind: str, data: st.DataObject) -> None:
    """A damaged memo row is a ``RowError`` (then the bytes are decoded again), never another exception;
    and it is read through JSON, as the memo file is."""
    row, der = rows[kind][data.draw(st.integers(0, len(rows[kind]) - 1))]
    edited = json.loads(json.dumps(data.draw(edited_json(row))))
    with contextlib.suppress(decoded.RowError):
        bounded(lambda: REBUILD[kind](edited, der))


OFFLINE_SIGNERS = """  offline:
    type: offline
    key_signer: ta-keys
  ta-keys:
    type: file
    directory: ../offline-keys
"""


@pytest.fixture(scope="module")
def ceremony_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real signing request, written by an apply with an offline trust anchor, and its signed
    response."""
    scratch = scratch_copy(tmp_path_factory.mktemp("ceremony"))
    rpki = scratch.repo / "rpki.yaml"
    rpki.write_text(rpki.read_text() + OFFLINE_SIGNERS)
    scratch.edit("cas/ta.yaml", "trust_anchor: true\n", "trust_anchor: true\nsigner: offline\n")
    scratch.apply(T0)
    path = scratch.root / "published" / "ta-request.json"
    request, raw = read_request(path)
    response = ceremony.sign(request, raw, FileSigner(scratch.root / "offline-keys"), T0 + timedelta(hours=1))
    return {
        "request": json.loads(raw),
        "raw": raw,
        "response": json.loads(response.model_dump_json()),
        "published": read(scratch.rsync),
        "directory": tmp_path_factory.mktemp("requests"),
    }


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_signing_requests(ceremony_files: dict[str, Any], data: st.DataObject) -> None:
    """A request file damaged on its way to the offline machine: refused with ``CeremonyError`` before
    anything is signed, never a traceback."""
    if data.draw(st.booleans()):
        blob = data.draw(_json_bytes(ceremony_files["raw"]))
    else:
        blob = json.dumps(data.draw(edited_json(ceremony_files["request"]))).encode()
    path = ceremony_files["directory"] / "request.json"
    path.write_bytes(blob)
    try:
        request, _ = bounded(lambda: read_request(path))
        bounded(lambda: ceremony.check_request(request, T0 + timedelta(hours=1)))
    except CeremonyError:
        pass


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_signing_responses(ceremony_files: dict[str, Any], data: st.DataObject) -> None:
    """A response whose objects are damaged or replaced: ``import_response`` refuses it with
    ``CeremonyError``, never a traceback, and never returns a tree carrying a damaged object."""
    response = ceremony_files["response"]
    files = dict(response["files"])
    path = sorted(files)[data.draw(st.integers(0, len(files) - 1))]
    kind = {"cer": "cer", "crl": "crl", "mft": "signed"}[path.rsplit(".", 1)[-1]]
    damaged = data.draw(inputs(kind))
    files[path] = base64.b64encode(damaged).decode()
    edited = {**response, "files": files}
    if data.draw(st.booleans()):
        edited = data.draw(edited_json(edited))
    location = ceremony_files["directory"] / "response.json"
    location.write_text(json.dumps(edited))
    pending = SigningRequest.model_validate_json(ceremony_files["raw"]), ceremony_files["raw"]
    published: PublishedState = ceremony_files["published"]
    try:
        loaded = read_response(location)
        tree = bounded(
            lambda: ceremony.import_response(
                loaded, pending, published, T0 + timedelta(hours=2), expect_key=None
            )
        )
    except CeremonyError:
        return
    assert tree[path] == damaged  # only an object that verifies is ever imported
    assert (
        not isinstance(PublishedState(files={path: damaged}).certificate(path), Unreadable) or kind != "cer"
    )


def _json_bytes(raw: bytes) -> st.SearchStrategy[bytes]:
    """The bytes of a JSON file with bits flipped, cut short, or spliced."""
    return st.one_of(
        st.integers(0, len(raw)).map(lambda n: raw[:n]),
        st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 7)).map(
            lambda at: raw[: at[0]] + bytes((raw[at[0]] ^ (1 << at[1]),)) + raw[at[0] + 1 :]
        ),
        st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=8)).map(
            lambda at: raw[: at[0]] + at[1] + raw[at[0] :]
        ),
        st.just(b"[" * 100000 + b"]" * 100000),
        st.just(b'{"a":' * 50000 + b"1" + b"}" * 50000),
    )


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("cer", 0, float("inf")),  # the serial: int() of an infinity overflows
        ("cer", 3, "2026-11-23T12:00:00"),  # notBefore without a zone: later comparisons would raise
        ("crl", 0, float("-inf")),
        ("crl", 4, [[1, "2026-11-23T12:00:00"]]),
        ("mft", 1, [float("inf"), 10]),
    ],
)
def test_a_damaged_memo_row_is_decoded_again(
    rows: dict[str, list[tuple[decoded.Row, bytes]]], kind: str, field: int, value: Any
) -> None:
    """Through the reader, as plan uses it: the row is dropped and the bytes decoded again."""
    row, der = rows[kind][0]
    edited = json.loads(json.dumps(_replaced(row, (field,), value)))
    with pytest.raises(decoded.RowError):
        REBUILD[kind](edited, der)
    path = f"ca/x.{kind}"
    state = PublishedState(files={path: der})
    state.memo.objects[state.sha256(path)] = [kind, state.sha256(path).hex(), *edited]
    if kind == "cer":
        assert state.certificate(path) == cert.decode(der)
    elif kind == "crl":
        assert state.crl(path) == crl.decode(der)
    else:
        found = state.manifest(path)
        assert not isinstance(found, Unreadable) and found is not None
        assert found.content == manifest.decode(cms.decode(der).econtent)


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_ceremony_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """``rpkictl ta sign /dev/...`` or a FIFO: a clear refusal, never a read that waits for ever."""
    path = tmp_path / "request.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(CeremonyError, match=r"cannot read the signing request .*not a regular file"):
        read_request(path)
    with pytest.raises(CeremonyError, match=r"cannot read the signing response .*not a regular file"):
        read_response(path)
