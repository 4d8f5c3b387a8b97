"""``rpkictl serve`` as a repository for many publishers: latencies and sustained publication rate.

    python -m benchmarks.publication_server                      # 1,000 publishers of 10 objects each
    python -m benchmarks.publication_server --publishers 100 --rate 50 --seconds 10

The scenario is the small ISP of ``benchmarks/scenarios.py`` (RRDP published) with ``--publishers``
declared publishers, each already holding ``--objects`` objects of 0.5 to 2.5 KB in our repository, and one
external child of the ISP's CA. ``rpkictl serve`` runs as its own process on 127.0.0.1; the clients are
httpx clients in this process, each message signed with ``sigmsg`` under the publisher's own BPKI identity
and each answer verified with the repository's, as a publisher's software does. The figures:

1. RFC 8181 ``list`` latency (one request at a time, a different publisher each time);
2. RFC 6492 ``list`` and ``issue`` latency of the external child (each issue re-certifies the child's key
   under a different resource limit, so every one signs and publishes a certificate);
3. publish latency, one request at a time: each replaces one object of a publisher; after the reply the
   new object is looked for in the served rsync tree and in the newest RRDP delta;
4. publication rate: ``--rate`` requests a second from distinct publishers for ``--seconds`` seconds
   (arrivals on a fixed schedule, whatever the answers' pace), each replacing one object; every answer
   must be a ``success`` reply. Latency is counted from the moment the signed request is sent.

The server's peak RSS is read from ``/proc`` at the end.

The publishers' identity keys (and a few keys for the clients' EE certificates) are generated once, on
every core, into ``<scratch>/keys.bin`` and reused by the next run with the same ``--scratch``; the
objects are put in place by one publication before the server starts (publishing them through the
server would time the seeding, not the service). The clients sign each publisher's messages with one EE
certificate made at the start (``sigmsg.message_key``) whose key is drawn from a pool: a real publisher
signs a message every few minutes, not 50 a second on the server's two cores.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import queue
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from benchmarks import keypool, scenarios
from reconciler import engine, identity, layout
from reconciler.apply import lock
from reconciler.protocol import bpki, csr, oob, sigmsg, updown
from reconciler.protocol import publication as rfc8181
from reconciler.protocol.bpki import IdentityCertificate
from reconciler.publish import rrdp
from reconciler.resources import Resources
from reconciler.signers import files
from reconciler.signers.base import key_id

RSYNC_BASE = "rsync://rpki.example.net/repo/"
RRDP_BASE = "https://rpki.example.net/rrdp/"
PARENT = "operator"
CHILD = "child"
CHILD_RESOURCES = Resources.parse(["AS64496"], ["10.255.0.0/16"], [])
EE_POOL = 64  # keys the clients' EE certificates take in turn


class MemorySigner:
    """A publisher's identity key, held in memory (the Signer protocol, for ``sigmsg``)."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self._private = private
        self._id = key_id(private.public_key())

    def find_key(self, label: str) -> bytes | None:
        return self._id

    def create_key(self, label: str) -> bytes:
        return self._id

    def public_key(self, key: bytes) -> rsa.RSAPublicKey:
        return self._private.public_key()

    def sign(self, key: bytes, data: bytes) -> bytes:
        return self._private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def destroy_key(self, key: bytes) -> None:
        raise NotImplementedError


@dataclass
class Peer:
    """A publisher (or the child): its identity and the EE certificate its messages are signed with."""

    handle: str
    signer: MemorySigner
    identity: IdentityCertificate
    ee: sigmsg.MessageKey | None = None
    objects: dict[str, bytes] = field(default_factory=dict)  # name -> bytes, as last published
    last_signed: datetime | None = None

    def sign(self, xml: bytes) -> bytes:
        now = datetime.now(UTC).replace(microsecond=0)
        if self.last_signed is not None and now <= self.last_signed:
            now = self.last_signed + timedelta(seconds=1)  # the replay guard wants a later second
            time.sleep(max(0.0, (now - datetime.now(UTC)).total_seconds()))
        if self.ee is None or now > self.ee.not_after - timedelta(minutes=1):
            self.ee = sigmsg.message_key(self.signer, self.signer._id, self.identity, now)
        self.last_signed = now
        return sigmsg.sign(xml, self.signer, self.signer._id, self.identity, now, ee=self.ee)


def _pooled_ee_keys(keys: list[rsa.RSAPrivateKey]) -> None:
    """Make ``sigmsg.message_key`` draw the clients' EE keys from ``keys`` in turn (as ``keypool`` does for
    the one-time keys of an apply): the server still gets a distinct EE certificate per publisher."""
    turns = itertools.cycle(keys)
    guard = threading.Lock()

    def pooled() -> files.OneTimeKey:
        made = files.OneTimeKey.__new__(files.OneTimeKey)
        with guard:
            made.private = next(turns)
        made.public = made.private.public_key()
        made.key_id = key_id(made.public)
        return made

    sigmsg.OneTimeKey = pooled  # type: ignore[attr-defined,assignment]


def load_keys(scratch: Path, count: int) -> list[rsa.RSAPrivateKey]:
    """``count`` RSA keys, generated on every core into ``<scratch>/keys.bin`` the first time."""
    pool = scratch / "keys.bin"
    started = time.perf_counter()
    made = keypool.ensure(pool, count)
    if made:
        print(f"generated {made:,} RSA keys in {time.perf_counter() - started:.0f} s (kept in {pool})")
    loaded = []
    for der in itertools.islice(keypool._stored(pool), count + keypool.ONE_TIME):
        key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit(f"{pool} holds a key that is not RSA: remove the file")
        loaded.append(key)
    return loaded


def write_state(root: Path, peers: list[Peer], child: Peer) -> Path:
    """The small ISP with the publishers and the child declared, and its RRDP on."""
    repo = scenarios.write(scenarios.SCENARIOS["small"], root)
    rpki = repo / "rpki.yaml"
    lines = [rpki.read_text(), "serve:\n  base_uri: http://127.0.0.1/rpki\n", "publishers:\n"]
    (repo / "publishers").mkdir()
    for peer in peers:
        request = oob.PublisherRequest(publisher_handle=peer.handle, identity=peer.identity.der)
        (repo / "publishers" / f"{peer.handle}.xml").write_bytes(oob.render(request))
        lines.append(f"  - handle: {peer.handle}\n    request: publishers/{peer.handle}.xml\n")
    rpki.write_text("".join(lines))
    (repo / "children").mkdir()
    asked = oob.ChildRequest(child_handle=child.handle, identity=child.identity.der)
    (repo / "children" / f"{CHILD}.xml").write_bytes(oob.render(asked))
    ca = repo / "cas" / f"{PARENT}.yaml"
    ca.write_text(
        ca.read_text()
        + f"children:\n  - handle: {CHILD}\n    request: children/{CHILD}.xml\n"
        + "    resources: {asn: [AS64496], ipv4: [10.255.0.0/16]}\n"
    )
    return repo


def seed(repo: Path, peers: list[Peer], objects: int, rng: random.Random) -> int:
    """Put ``objects`` objects of each publisher in the served tree, in one publication; their count."""
    desired = engine.load_desired(repo)
    foreign: dict[str, bytes] = {}
    for peer in peers:
        for index in range(objects):
            name = "0.mft" if index == 0 else "0.crl" if index == 1 else f"roa{index}.roa"
            peer.objects[name] = rng.randbytes(rng.randint(500, 2500))
            foreign[layout.publisher_repository(peer.handle) + name] = peer.objects[name]
    directory = desired.publication.directory
    with lock.acquire(
        directory, who="benchmark", operation="seed", plan_id=None, timeout=timedelta(0)
    ) as held:
        workspace = engine.workspace_for(desired)
        engine.publish_all(
            workspace, workspace.published.files, datetime.now(UTC), held=held, foreign=foreign
        )
    return len(foreign)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def rss_mb(self, field: str = "VmHWM") -> float:
        """The server's peak (``VmHWM``) or current (``VmRSS``) resident memory."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(repo: Path, scratch: Path, threads: int, connections: int) -> Server:
    log = scratch / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "reconciler", "serve", str(repo), "--port", "0"),
                *("--threads", str(threads), "--connection-limit", str(connections), "--allow-uncommitted"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "400"},
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            return Server(process, found.group(1), log)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"rpkictl serve did not start:\n{log.read_text(errors='replace')[-3000:]}")


@dataclass
class Client:
    """One connection to the server, answering as a publisher's or child's software does."""

    url: str
    repository: IdentityCertificate
    parent: IdentityCertificate
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    def post(self, path: str, content_type: str, body: bytes) -> tuple[bytes, float]:
        started = time.perf_counter()
        response = self.http.post(self.url + path, content=body, headers={"Content-Type": content_type})
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response.content, elapsed

    def publication(self, peer: Peer, query: rfc8181.QueryMessage) -> tuple[rfc8181.ReplyMessage, float]:
        body = peer.sign(rfc8181.render(query))
        answer, elapsed = self.post(f"/rfc8181/{peer.handle}", rfc8181.CONTENT_TYPE, body)
        verified = sigmsg.verify(answer, self.repository, datetime.now(UTC), "reply")
        return rfc8181.parse_reply(verified.xml, "reply"), elapsed

    def updown(self, child: Peer, payload: updown.Payload) -> tuple[updown.Payload, float]:
        body = child.sign(updown.render(updown.Message(CHILD, PARENT, payload)))
        answer, elapsed = self.post(f"/rfc6492/{CHILD}", updown.CONTENT_TYPE, body)
        verified = sigmsg.verify(answer, self.parent, datetime.now(UTC), "reply")
        return updown.parse(verified.xml, "reply").payload, elapsed


def replace_one(peer: Peer, rng: random.Random) -> tuple[rfc8181.Query, str, bytes]:
    name = rng.choice(sorted(peer.objects))
    new = rng.randbytes(rng.randint(500, 2500))
    uri = f"{RSYNC_BASE}{layout.publisher_repository(peer.handle)}{name}"
    pdu = rfc8181.Publish(uri, new, hash=rfc8181.object_hash(peer.objects[name]))
    return rfc8181.Query((pdu,)), name, new


def visible(directory: Path, peer: Peer, name: str, data: bytes) -> tuple[bool, bool]:
    """Whether ``data`` is served at the object's path in rsync, and published by the newest RRDP delta."""
    rel = layout.publisher_repository(peer.handle) + name
    try:
        in_rsync = (directory / "rsync" / rel).read_bytes() == data
    except OSError:
        in_rsync = False
    notification = rrdp.read_notification(directory / "rrdp")
    in_rrdp = False
    if notification is not None and notification.deltas:
        delta = directory / "rrdp" / notification.deltas[0].uri.removeprefix(RRDP_BASE)
        in_rrdp = f'uri="{RSYNC_BASE}{rel}"' in delta.read_text()
        if in_rrdp:
            in_rrdp = base64.b64encode(data).decode() in delta.read_text()
    return in_rsync, in_rrdp


def figures(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms, p99 {p99 * 1000:7.1f} ms (n={len(ordered)})"


class Unexpected(Exception):  # noqa: N818 - what the benchmark stops on
    """An answer a correct server would not give."""


def expect(value: object, kind: type, why: str) -> None:
    if not isinstance(value, kind):
        raise Unexpected(f"{why}: {value!r}"[:500])


@dataclass(frozen=True)
class Rate:
    """What a run at a fixed arrival rate measured."""

    latencies: list[float]  # in the order the answers came
    since_due: list[float]  # the same, counted from when each request was due to be sent
    failed: list[str]
    answered_per_second: float  # from the first request to the last answer
    steady_per_second: float  # answers a second from a quarter of the run to the last arrival


def throughput(
    server: Server,
    client_args: tuple[IdentityCertificate, IdentityCertificate],
    peers: list[Peer],
    *,
    rate: float,
    seconds: float,
    workers: int,
    rng: random.Random,
) -> Rate:
    """Requests at ``rate`` a second for ``seconds`` (each replacing one object of a publisher not asked
    before in this run, as far as there are publishers), sent by ``workers`` threads."""
    count = int(rate * seconds)
    order = list(peers)
    rng.shuffle(order)
    jobs: queue.Queue[tuple[float, Peer] | None] = queue.Queue()
    latencies: list[float] = []
    since_due: list[float] = []
    answered: list[float] = []
    failed: list[str] = []
    guard = threading.Lock()

    def work(seed: float) -> None:
        client = Client(server.url, *client_args)
        mine = random.Random(seed)  # noqa: S311 - benchmark data
        while (job := jobs.get()) is not None:
            due, peer = job
            query, name, new = replace_one(peer, mine)
            try:
                reply, elapsed = client.publication(peer, query)
            except Exception as exc:  # counted as a failure, whatever it was
                with guard:
                    failed.append(f"{peer.handle}: {type(exc).__name__}: {exc}")
                continue
            with guard:
                if isinstance(reply, rfc8181.SuccessReply):
                    peer.objects[name] = new
                    latencies.append(elapsed)
                    answered.append(time.perf_counter())
                    since_due.append(answered[-1] - due)
                else:
                    failed.append(f"{peer.handle}: {reply}")

    threads = [threading.Thread(target=work, args=(rng.random(),)) for _ in range(workers)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    for index in range(count):
        due = started + index / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        jobs.put((due, order[index % len(order)]))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    end = started + seconds
    steady = sum(1 for moment in answered if started + seconds / 4 <= moment <= end) / (seconds * 3 / 4)
    return Rate(latencies, since_due, failed, len(latencies) / (time.perf_counter() - started), steady)


def rfc6492(client: Client, child: Peer, child_ca: MemorySigner, samples: int) -> None:
    """The external child's list and issue latencies; a failure is reported, not raised."""
    lists: list[float] = []
    issues: list[float] = []
    try:
        for _ in range(samples):
            answer, elapsed = client.updown(child, updown.ListQuery())
            expect(answer, updown.ListResponse, "RFC 6492 list")
            lists.append(elapsed)
        assert isinstance(answer, updown.ListResponse)  # noqa: S101 - for the type checker
        request = csr.build_ca_request(
            child_ca, child_ca._id, f"{RSYNC_BASE}child/", f"{RSYNC_BASE}child/ca.mft", None
        )
        limits = [None, Resources.parse(["AS64496"], ["10.255.0.0/17"], [])]
        for index in range(samples):
            payload = updown.IssueRequest(answer.classes[0].class_name, request, limits[index % 2])
            issued, elapsed = client.updown(child, payload)
            expect(issued, updown.IssueResponse, "RFC 6492 issue")
            issues.append(elapsed)
    except (Unexpected, RuntimeError) as exc:
        print(f"RFC 6492 failed: {str(exc)[:300]}")
    if lists:
        print(f"RFC 6492 list                 {figures(lists)}")
    if issues:
        print(f"RFC 6492 issue                {figures(issues)}")


def one_at_a_time(client: Client, directory: Path, sample: list[Peer], rng: random.Random) -> None:
    singles: list[float] = []
    seen = {"rsync": 0, "rrdp": 0}
    for peer in sample:
        query, name, new = replace_one(peer, rng)
        reply, elapsed = client.publication(peer, query)
        expect(reply, rfc8181.SuccessReply, "publish")
        peer.objects[name] = new
        singles.append(elapsed)
        in_rsync, in_rrdp = visible(directory, peer, name, new)
        seen["rsync"] += in_rsync
        seen["rrdp"] += in_rrdp
    print(
        f"publish, one at a time        {figures(singles)}; visible when answered: "
        f"rsync {seen['rsync']}/{len(singles)}, RRDP {seen['rrdp']}/{len(singles)}"
    )


def rpkictl(*args: str) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stdout.decode() + done.stderr.decode())


def prepare(
    args: argparse.Namespace, scratch: Path, rng: random.Random
) -> tuple[Path, list[Peer], Peer, MemorySigner]:
    """Keys, the desired state, its first apply, the parent's identity and the publishers' objects."""
    keys = load_keys(scratch, args.publishers + 2)
    _pooled_ee_keys(keys[:EE_POOL])
    now = datetime.now(UTC)
    people = []
    for index, private in enumerate(keys[EE_POOL : EE_POOL + args.publishers + 1]):
        signer = MemorySigner(private)
        handle = f"p{index:05d}" if index < args.publishers else CHILD
        people.append(Peer(handle, signer, bpki.create_identity(signer, signer._id, now)))
    peers, child = people[:-1], people[-1]
    repo = write_state(scratch, peers, child)
    rpkictl("apply", str(repo), "--yes")
    rpkictl("oob", "parent-response", PARENT, CHILD, str(repo))  # as the operator does: makes our identity
    objects = seed(repo, peers, args.objects, rng)
    ours = len(engine.workspace_for(engine.load_desired(repo)).published.files)
    print(
        f"{args.publishers:,} publishers, {objects:,} of their objects and {ours:,} of ours served; {scratch}"
    )
    return repo, peers, child, MemorySigner(keys[EE_POOL + args.publishers + 1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--publishers", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10, help="objects each publisher holds")
    parser.add_argument("--rate", type=float, default=50.0, help="publication requests a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the rate run")
    parser.add_argument(
        "--workers", type=int, default=300, help="client threads (connections) of the rate run"
    )
    parser.add_argument("--threads", type=int, default=128, help="rpkictl serve --threads")
    parser.add_argument("--samples", type=int, default=30, help="requests timed one at a time, per kind")
    parser.add_argument("--scratch", type=Path, default=None, help="kept; keys.bin is reused from it")
    args = parser.parse_args(argv)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="publication-server-"))
    scratch.mkdir(parents=True, exist_ok=True)
    for stale in ("state", "published", "keys"):
        shutil.rmtree(scratch / stale, ignore_errors=True)
    rng = random.Random(7)  # noqa: S311 - benchmark data
    repo, peers, child, child_ca = prepare(args, scratch, rng)
    desired = engine.load_desired(repo)
    directory = desired.publication.directory
    server = start_server(repo, scratch, args.threads, args.workers + 16)
    try:
        repository = identity.load(identity.REPOSITORY, identity.directory(desired))  # made by serve
        parent = identity.load(PARENT, identity.directory(desired))
        if repository is None or parent is None:
            raise SystemExit("the repository's or the parent's identity is missing")
        client = Client(server.url, repository, parent)
        print(f"server RSS when started       {server.rss_mb('VmRSS'):.0f} MB")
        sample = rng.sample(peers, min(len(peers), args.samples * 2))
        lists = []
        for peer in sample[: args.samples]:
            reply, elapsed = client.publication(peer, rfc8181.ListQuery())
            expect(reply, rfc8181.ListReply, "list")
            lists.append(elapsed)
        print(f"RFC 8181 list                 {figures(lists)}")
        rfc6492(client, child, child_ca, max(3, args.samples // 3))
        print(f"server RSS after RFC 6492     {server.rss_mb('VmRSS'):.0f} MB")
        one_at_a_time(client, directory, sample[args.samples :], rng)
        print(f"server RSS after one at a time {server.rss_mb('VmRSS'):.0f} MB")
        before = rrdp.read_notification(directory / "rrdp")
        run = throughput(
            server,
            (repository, parent),
            peers,
            rate=args.rate,
            seconds=args.seconds,
            workers=args.workers,
            rng=rng,
        )
        after = rrdp.read_notification(directory / "rrdp")
        serials = (after.serial - before.serial) if after and before else 0
        print(
            f"publish at {args.rate:g}/s for {args.seconds:g} s   "
            f"{figures(run.latencies) if run.latencies else '-'}; {len(run.failed)} failed, "
            f"{serials} RRDP serials"
        )
        quarter = max(1, len(run.latencies) // 4)
        print(
            f"  answered {run.steady_per_second:.1f}/s while requests arrived (after the first quarter), "
            f"{run.answered_per_second:.1f}/s first request to last answer; median latency "
            f"{statistics.median(run.latencies[:quarter]) * 1000:.0f} ms in the first quarter of answers, "
            f"{statistics.median(run.latencies[-quarter:]) * 1000:.0f} ms in the last"
        )
        print(f"  counted from when each was due: {figures(run.since_due) if run.since_due else '-'}")
        for line in run.failed[:5]:
            print(f"  failed: {line[:300]}")
        print(
            f"server RSS                    {server.rss_mb():.0f} MB peak, "
            f"{server.rss_mb('VmRSS'):.0f} MB at the end"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
