"""An append-only, hash-chained audit log of what ``rpkictl`` changed, as JSON Lines.

Each line is one entry: the caller's record (who, git commit, plan ID, approvals, changes, counts,
status, message, ...) plus four fields this module adds:

* ``seq``: 1 for the first entry, then the previous entry's ``seq`` + 1;
* ``time``: when it was written, ISO-8601 UTC;
* ``prev``: the previous entry's ``hash`` (64 zeros for the first entry);
* ``hash``: SHA-256 (hex) of the entry's canonical JSON *without* ``hash`` (sorted keys, no whitespace,
  UTF-8, ``ensure_ascii=False``).

Editing an entry breaks its ``hash``; deleting, inserting or reordering entries breaks the ``prev`` link
and the ``seq`` run of the entry after the change. ``verify`` reports each such problem with its line.

What the chain cannot show: deleting the *last* entry (or the last few) leaves a shorter chain that is
still perfectly valid, and anyone able to rewrite the file can recompute every hash after an edit. The
file alone is tamper-evident only for changes in the middle. Operators who need more should ship each
entry elsewhere as it is written (syslog, a log collector, a commit in another repository): comparing
the last ``hash`` seen there with the file's detects truncation and rewriting.

Appends are serialised with ``flock`` on the log itself, so concurrent writers (two ``rpkictl`` runs,
a cron job) cannot interleave lines or both chain onto the same previous entry and fork the chain.

Records must not contain secrets: they are written in clear and kept forever. Callers must never put
key material, HSM PINs, passwords or tokens in them; this module cannot tell and does not try.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.fsutil import fsync_dir

GENESIS = "0" * 64
RESERVED = frozenset({"seq", "time", "prev", "hash"})
FILE_MODE = 0o640  # readable by an operators' group, not by everyone: records name people and plans
_TAIL_CHUNK = 64 * 1024


class AuditError(ValueError):
    """A record that cannot be logged, or a log that cannot be appended to or read."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the log: the caller's record and the chain fields around it."""

    seq: int
    time: datetime
    prev: str
    hash: str
    record: dict[str, Any]  # the caller's fields, without the four above


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """Something wrong on one line (1-based) of the log."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def append(path: Path, record: dict[str, Any], *, now: datetime) -> AuditEntry:
    """Append ``record`` to the log at ``path`` (created, mode 0640, with its directory, if missing).

    ``record`` must be a dict of JSON values with string keys and none of ``seq``, ``time``, ``prev``,
    ``hash``. The line is written with one ``write`` under ``O_APPEND`` and fsynced before returning, so
    a returned entry survives a crash. Raises ``AuditError`` for a bad record, or if the log's last line is
    unreadable (the chain cannot be continued honestly; run ``verify``), and ``OSError`` if the disk fails.
    """
    if not isinstance(record, dict):
        raise AuditError(f"an audit record must be a dict, not {type(record).__name__}")
    bad_keys = sorted(str(key) for key in record if not isinstance(key, str))
    if bad_keys:
        raise AuditError(f"audit record keys must be strings: {', '.join(bad_keys)}")
    reserved = sorted(record.keys() & RESERVED)
    if reserved:
        raise AuditError(f"audit record uses reserved keys {', '.join(reserved)}: this module sets them")
    try:
        # Round-trip through JSON so that what is hashed now is exactly what ``verify`` will read back
        # (tuples become lists, and so on); NaN and infinities are not JSON and are refused.
        fields = _loads(_canonical(record))
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit record is not plain JSON: {exc}") from exc
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    stamp = now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, created = _open_for_append(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, also if we die
        last = _last_entry(fd, path)
        entry: dict[str, Any] = {
            "seq": 1 if last is None else last.seq + 1,
            "time": stamp,
            "prev": GENESIS if last is None else last.hash,
            **fields,
        }
        entry["hash"] = _hash(entry)
        line = (json.dumps(_display_order(entry), ensure_ascii=False, allow_nan=False) + "\n").encode()
        view = memoryview(line)
        while view:  # one write in practice; the loop only guards against a short write
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
    return _entry(entry)


def read(path: Path) -> list[AuditEntry]:
    """All entries, oldest first ([] if the log does not exist). Checks the format, not the chain (that
    is ``verify``'s job); raises ``AuditError`` naming the first line that cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for number, raw in enumerate(_lines(data), start=1):
        try:
            entries.append(_entry(_parse_line(raw)))
        except ValueError as exc:
            raise AuditError(f"{path}: line {number}: {exc}") from exc
    return entries


def verify(path: Path) -> list[AuditProblem]:
    """Check every line and the chain; [] means intact (see the module docstring for what that cannot
    prove: a truncated log, or one rewritten from the edit onwards, still verifies).

    Each entry is chained to the last *readable* entry before it, so junk inserted between two entries is
    the only problem reported, while an entry overwritten with junk also shows as a break at the next one.
    After an edited entry the chain goes on from the hash it carries, so the next entry is not blamed too.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    problems: list[AuditProblem] = []
    prev_hash, prev_seq, prev_line = GENESIS, 0, 0
    lines = _lines(data)
    if data and not data.endswith(b"\n"):
        problems.append(AuditProblem(len(lines), "the last line is incomplete (no newline): a torn write?"))
    for number, raw in enumerate(lines, start=1):
        try:
            entry = _parse_line(raw)
        except ValueError as exc:
            problems.append(AuditProblem(number, f"unreadable: {exc}"))
            continue
        seq, stored = entry["seq"], entry["hash"]
        if stored != _hash({key: value for key, value in entry.items() if key != "hash"}):
            problems.append(AuditProblem(number, "hash mismatch: the entry was changed after it was written"))
        if entry["prev"] != prev_hash:
            where = "the start of the log" if prev_line == 0 else f"line {prev_line}"
            problems.append(
                AuditProblem(
                    number,
                    f"prev does not match the hash of {where}: "
                    "an entry before this one was deleted, inserted or moved",
                )
            )
        if seq <= prev_seq:
            problems.append(AuditProblem(number, f"seq {seq} does not increase (previous is {prev_seq})"))
        elif seq != prev_seq + 1:
            problems.append(AuditProblem(number, f"seq {seq} leaves a gap (expected {prev_seq + 1})"))
        prev_hash, prev_seq, prev_line = stored, seq, number
    return problems


def who(environ: Mapping[str, str] | None = None) -> str:
    """Who to name in records: the GitHub actor and a link to the run, ``ci:<user>@<host>`` in other CI,
    else ``user@host``. ``environ`` defaults to ``os.environ``."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        actor = env.get("GITHUB_ACTOR") or "unknown"
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        run = f"{server}/{env.get('GITHUB_REPOSITORY', '?')}/actions/runs/{env.get('GITHUB_RUN_ID', '?')}"
        return f"{actor} (GitHub Actions run {run})"
    local = f"{_user()}@{socket.gethostname()}"
    if env.get("CI", "").lower() not in ("", "0", "false", "no"):
        return f"ci:{local}"
    return local


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no $USER
        return f"uid{os.getuid()}"


def _open_for_append(path: Path) -> tuple[int, bool]:
    """Open for appending (and reading the tail); say whether we created the file."""
    flags = os.O_RDWR | os.O_APPEND
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags), False
    os.fchmod(fd, FILE_MODE)  # whatever the umask
    return fd, True


def _last_entry(fd: int, path: Path) -> AuditEntry | None:
    """The last entry, read backwards from the end (logs grow forever; appends stay cheap)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    if os.pread(fd, 1, size - 1) != b"\n":
        raise AuditError(f"{path}: the last line is incomplete (a torn write?); run verify before appending")
    end = size - 1  # the final newline
    start = end
    while start > 0:
        chunk_start = max(0, start - _TAIL_CHUNK)
        chunk = os.pread(fd, start - chunk_start, chunk_start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            start = chunk_start + newline + 1
            break
        start = chunk_start
    raw = os.pread(fd, end - start, start)
    try:
        return _entry(_parse_line(raw))
    except ValueError as exc:
        raise AuditError(
            f"{path}: the last line cannot be read ({exc}); the chain cannot be continued, run verify"
        ) from exc


def _lines(data: bytes) -> list[bytes]:
    """The file's lines, split on newline only (a record's text may hold other line breaks, escaped)."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def _parse_line(raw: bytes) -> dict[str, Any]:
    """One line as a dict with well-formed chain fields; ``ValueError`` says what is wrong."""
    if not raw.strip():
        raise ValueError("empty line")
    try:
        entry = _loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    seq = entry.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("seq is missing or not an integer")
    for key in ("prev", "hash"):
        value = entry.get(key)
        if not isinstance(value, str) or len(value) != 64:
            raise ValueError(f"{key} is missing or not a SHA-256 hex digest")
    if not isinstance(entry.get("time"), str):
        raise ValueError("time is missing or not a string")
    _parse_time(entry["time"])
    return entry


def _entry(entry: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=entry["seq"],
        time=_parse_time(entry["time"]),
        prev=entry["prev"],
        hash=entry["hash"],
        record={key: value for key, value in entry.items() if key not in RESERVED},
    )


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"time {value!r} is not ISO-8601") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(entry).encode("utf-8")).hexdigest()


def _loads(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys: with them, what a reader sees depends on the parser."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=no_constant)


def _display_order(entry: dict[str, Any]) -> dict[str, Any]:
    """Chain fields first, so a person reading the file sees seq and time at the start of each line.
    The order does not matter to the hash, which is over the canonical (sorted) form."""
    head = {key: entry[key] for key in ("seq", "time", "prev", "hash")}
    return {**head, **{key: value for key, value in entry.items() if key not in RESERVED}}


INTERRUPTED = "interrupted (started, never finished)"


def outcomes(entries: list[AuditEntry]) -> list[tuple[AuditEntry, dict[str, Any]]]:
    """The applies the log records, each once, with its outcome: a "started" record is folded into the
    "applied" or "failed" record that follows it for the same plan, and one with no outcome (the apply
    was killed) is reported as interrupted."""
    shown = []
    for index, entry in enumerate(entries):
        record = entry.record
        if record.get("status") == "started":
            following = entries[index + 1].record if index + 1 < len(entries) else {}
            if following.get("plan_id") == record.get("plan_id") and following.get("status") in (
                "applied",
                "failed",
            ):
                continue  # shown with its outcome
            record = {**record, "status": INTERRUPTED}
        shown.append((entry, record))
    return shown
