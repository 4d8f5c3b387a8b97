"""An append-only, hash-chained audit log of what ``rpkictl`` changed, as JSON Lines.

Each line is one entry: the caller's record (who, git commit, plan ID, approvals, changes, counts,
status, message, ...) plus four fields this module adds:

* ``seq``: 1 for the first entry, then the previous entry's ``seq`` + 1;
* ``time``: when it was written, ISO-8601 UTC (the caller's ``now``: ``rpkictl`` passes the system
  clock's, never ``--now``, and keeps the times a plan and its signatures were made for in the record's
  own ``plan_time`` and ``signing_time``);
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

An append is whole or absent: a write cut short (a full disk) is truncated away before the error is
raised. A line torn by a crash or a power cut during its write, or any unreadable last line, never stops
the log: the next append first writes a ``log-repaired`` entry that names each unreadable line (its
number, length and SHA-256) and chains onto the last readable entry, then its own. ``verify`` accepts a
torn last line named that way (its bytes cannot change unnoticed), and goes on reporting any other
unreadable line, which is damage done after the write.

Records must not contain secrets: they are written in clear and kept forever. Callers must never put
key material, HSM PINs, passwords or tokens in them; this module cannot tell and does not try.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import itertools
import json
import os
import socket
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.fsutil import fsync_dir

GENESIS = "0" * 64
REPAIRED = "log-repaired"  # the status of the entry recording unreadable lines at the end of the log
PUBLISHED = "published"  # the status of an external publisher's RFC 8181 publication (not an apply)
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
    notes: tuple[str, ...] = ()  # what ``append`` repaired on its way (see the module docstring)


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
    return append_all(path, [record], now=now)[0]


def append_all(path: Path, records: list[dict[str, Any]], *, now: datetime) -> list[AuditEntry]:
    """Append ``records``, chained in this order, as :func:`append` appends one: with one ``write`` and
    one fsync for all of them (the publication server records the messages it published together),
    all or none (a bad record is refused before anything is written)."""
    if not records:
        return []
    checked = []
    for record in records:
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
            checked.append(_loads(_canonical(record)))
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit record is not plain JSON: {exc}") from exc
    written = stamp(now)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, created = _open_for_append(path)
    entries = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, also if we die
        last, damaged, torn = _tail(fd, path)
        lines: list[bytes] = [b""] if torn else []  # a torn line is ended before anything follows it
        notes: tuple[str, ...] = ()
        if damaged:
            repair = _chained(_repair_record(damaged, torn), last, written)
            lines.append(_line(repair))
            last = _entry(repair)
            notes = (_repair_note(path, damaged, torn, last.seq),)
        for fields in checked:
            entry = _chained(fields, last, written)
            lines.append(_line(entry))
            last = _entry(entry)
            entries.append(replace(last, notes=notes))
            notes = ()
        _write_whole(fd, b"\n".join(lines) + b"\n")
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
    return entries


def stamp(when: datetime) -> str:
    """A time as the log writes it (``time``, and a record's own ``plan_time`` and ``signing_time``):
    ISO-8601 UTC with microseconds and a ``Z``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _chained(fields: dict[str, Any], last: AuditEntry | None, stamp: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "seq": 1 if last is None else last.seq + 1,
        "time": stamp,
        "prev": GENESIS if last is None else last.hash,
        **fields,
    }
    entry["hash"] = _hash(entry)
    return entry


def _line(entry: dict[str, Any]) -> bytes:
    return json.dumps(_display_order(entry), ensure_ascii=False, allow_nan=False).encode()


def _write_whole(fd: int, data: bytes) -> None:
    """Append ``data`` and fsync it, or leave the file as it was: a write cut short (a full disk) is
    truncated away before the error is raised, so the log never keeps half a line of ours."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:  # one write in practice; the loop only guards against a short write
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)  # frees space: succeeds on a full disk
            os.fsync(fd)
        raise


def _repair_record(damaged: list[tuple[int, bytes]], torn: bool) -> dict[str, Any]:
    return {
        "status": REPAIRED,
        "who": who(),
        "damaged": [
            {"line": number, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
            for number, raw in damaged
        ],
        "torn": torn,
        "message": (
            "the last line was torn (a write cut short by a crash or a full disk); the chain goes on after it"
            if torn
            else "unreadable lines at the end of the log (changed after they were written); "
            "the chain goes on after them"
        ),
    }


def _repair_note(path: Path, damaged: list[tuple[int, bytes]], torn: bool, seq: int) -> str:
    where = ", ".join(f"line {number} ({len(raw)} bytes)" for number, raw in damaged)
    what = "ended with a torn line" if torn else "ended with unreadable lines"
    return (
        f"warning: the audit log {path} {what}: {where}; recorded as entry #{seq} ({REPAIRED}) and the "
        "chain continued after it ('rpkictl log --verify' shows the details)"
    )


def read(path: Path) -> list[AuditEntry]:
    """All entries, oldest first ([] if the log does not exist). Checks the format, not the chain (that
    is ``verify``'s job), and skips a torn line a ``log-repaired`` entry names; raises ``AuditError``
    naming the first other line that cannot be read."""
    entries, unreadable = scan(path)
    if unreadable:
        first = unreadable[0]
        raise AuditError(f"{path}: line {first.line}: {first.message.removeprefix('unreadable: ')}")
    return entries


def scan(path: Path) -> tuple[list[AuditEntry], list[AuditProblem]]:
    """The readable entries, and the lines that cannot be read (but those a ``log-repaired`` entry
    names as torn): for showing a damaged log without giving up on it."""
    parsed = _parse_all(_read_log(path))
    excused = _excused(parsed)
    entries = [_entry(entry) for _, _, entry, _ in parsed if entry is not None]
    unreadable = [
        AuditProblem(number, f"unreadable: {error}")
        for number, _, entry, error in parsed
        if entry is None and number not in excused
    ]
    return entries, unreadable


def verify(path: Path) -> list[AuditProblem]:
    """Check every line and the chain; [] means intact (see the module docstring for what that cannot
    prove: a truncated log, or one rewritten from the edit onwards, still verifies).

    Each entry is chained to the last *readable* entry before it, so junk inserted between two entries is
    the only problem reported, while an entry overwritten with junk also shows as a break at the next one.
    After an edited entry the chain goes on from the hash it carries, so the next entry is not blamed too.
    A torn line that the ``log-repaired`` entry after it names (number, length, SHA-256) is no problem.
    """
    data = _read_log(path)
    problems: list[AuditProblem] = []
    prev_hash, prev_seq, prev_line = GENESIS, 0, 0
    parsed = _parse_all(data)
    excused = _excused(parsed)
    if data and not data.endswith(b"\n"):
        problems.append(AuditProblem(len(parsed), "the last line is incomplete (no newline): a torn write?"))
    for number, _, entry, error in parsed:
        if entry is None:
            if number not in excused:
                problems.append(AuditProblem(number, f"unreadable: {error}"))
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


def _read_log(path: Path) -> bytes:
    """The log's bytes (b"" when there is none); ``AuditError`` saying what to do when it is not a
    readable file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise AuditError(
            f"the audit log {path} is {kind}: move it aside (an apply then starts a new log there), or point "
            "audit_log in rpki.yaml at the log file"
        )
    try:
        with path.open("rb") as handle:
            return handle.read()
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror or exc}") from exc


def _parse_all(data: bytes) -> list[tuple[int, bytes, dict[str, Any] | None, str]]:
    """Each line: its number, bytes, the entry (None when unreadable) and why it is unreadable."""
    parsed: list[tuple[int, bytes, dict[str, Any] | None, str]] = []
    for number, raw in enumerate(_lines(data), start=1):
        try:
            parsed.append((number, raw, _parse_line(raw), ""))
        except ValueError as exc:
            parsed.append((number, raw, None, str(exc)))
    return parsed


def _excused(parsed: list[tuple[int, bytes, dict[str, Any] | None, str]]) -> set[int]:
    """The unreadable lines that a ``log-repaired`` entry right after them names as torn, by number,
    length and SHA-256 (so the bytes of such a line cannot change unnoticed either)."""
    excused = set()
    for index, (number, raw, entry, _) in enumerate(parsed[:-1]):
        following = parsed[index + 1][2]
        if entry is not None or following is None or following.get("status") != REPAIRED:
            continue
        damaged = following.get("damaged")
        if following.get("torn") is not True or not isinstance(damaged, list) or not damaged:
            continue
        named = damaged[-1]
        if named == {"line": number, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}:
            excused.add(number)
    return excused


def who(environ: Mapping[str, str] | None = None) -> str:
    """Who to name in records: the person behind the run, as far as the environment tells.

    * GitHub Actions: the actor and a link to the run; GitLab CI: the user who started the pipeline
      (``GITLAB_USER_LOGIN``) and the job's URL;
    * any other runner or wrapper can name its person in ``RPKICTL_ACTOR`` (e.g. Jenkins' build user):
      ``<actor> (<user>@<host>)``;
    * under sudo, the person who ran it: ``alice via sudo (root@host)``;
    * else ``user@host``; in a CI run (``CI`` set) that no variable above names, ``ci:user@host``.

    These are claims of the environment, recorded as given (with control characters escaped): the
    audit log says who ran a command, it does not authenticate them. ``environ`` defaults to
    ``os.environ``."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        actor = printable(env.get("GITHUB_ACTOR") or "unknown")
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        run = f"{server}/{env.get('GITHUB_REPOSITORY', '?')}/actions/runs/{env.get('GITHUB_RUN_ID', '?')}"
        return f"{actor} (GitHub Actions run {printable(run)})"
    if env.get("GITLAB_CI") == "true":
        actor = printable(env.get("GITLAB_USER_LOGIN") or "unknown")
        job = env.get("CI_JOB_URL")
        return f"{actor} (GitLab CI job {printable(job)})" if job else f"{actor} (GitLab CI)"
    local = f"{_user()}@{socket.gethostname()}"
    named = env.get("RPKICTL_ACTOR", "").strip()
    if named:
        return f"{printable(named)} ({local})"
    sudo = env.get("SUDO_USER", "").strip()
    if sudo and sudo != _user():
        return f"{printable(sudo)} via sudo ({local})"
    if env.get("CI", "").lower() not in ("", "0", "false", "no"):
        return f"ci:{local}"
    return local


REASON_MAX = 500  # characters: a ticket number and a sentence, not a report


def check_reason(reason: str | None) -> str | None:
    """An operator's ``--reason`` as the log keeps it (surrounding spaces trimmed), or None for none.

    Raises :class:`AuditError` for text that would not read back as typed: longer than
    :data:`REASON_MAX` characters, or holding a control character (a line break, a terminal escape), a
    bidirectional-text control (which reorders what ``rpkictl log`` shows) or bytes that are not UTF-8."""
    if reason is None:
        return None
    text = reason.strip()
    if not text:
        raise AuditError("--reason is empty: give the change or incident ticket, or leave --reason out")
    if len(text) > REASON_MAX:
        raise AuditError(
            f"--reason is {len(text)} characters long, at most {REASON_MAX} are kept: give the ticket and "
            "a sentence, and put the details in the ticket"
        )
    bad = next((ch for ch in text if _unprintable(ch)), None)
    if bad is not None:
        what = "bytes that are not UTF-8" if unicodedata.category(bad) == "Cs" else f"the character {bad!r}"
        raise AuditError(
            f"--reason holds {what} at position {text.index(bad) + 1}: write it on one line, in plain text"
        )
    return text


def printable(text: str) -> str:
    """``text`` with control, bidirectional and unpaired-surrogate characters escaped (``\\x1b``,
    ``\\u202e``), so a value from the environment or from an edited log cannot rewrite the terminal it is
    shown on."""
    if not any(_unprintable(ch) for ch in text):
        return text
    return "".join(_escape(ch) if _unprintable(ch) else ch for ch in text)


def _unprintable(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Cs", "Zl", "Zp") or (category == "Cf" and ch in _BIDI_CONTROLS)


# Embeddings, overrides and isolates (Unicode's "Trojan Source" characters).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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
        try:
            return os.open(path, flags), False
        except IsADirectoryError:
            _read_log(path)  # raises, saying what to do
            raise
    os.fchmod(fd, FILE_MODE)  # whatever the umask
    return fd, True


def _tail(fd: int, path: Path) -> tuple[AuditEntry | None, list[tuple[int, bytes]], bool]:
    """The last readable entry; the unreadable lines after it (number, bytes); whether the last line is
    torn (no newline). The end is read backwards (logs grow forever; appends stay cheap); the whole log
    only when its last line is damaged."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, [], False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    if not torn:
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
        try:
            return _entry(_parse_line(os.pread(fd, end - start, start))), [], False
        except ValueError:
            pass
    data = b""
    while len(data) < size:
        piece = os.pread(fd, size - len(data), len(data))
        if not piece:
            break
        data += piece
    parsed = _parse_all(data)
    damaged: list[tuple[int, bytes]] = []
    for number, raw, entry, _ in reversed(parsed):
        if entry is not None:
            return _entry(entry), damaged[::-1], torn
        damaged.append((number, raw))
    return None, damaged[::-1], torn


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


def started_times(entries: list[AuditEntry]) -> dict[int, datetime]:
    """When each apply shown by :func:`outcomes` started, by the ``seq`` of its outcome record: the
    ``time`` of the "started" record folded into it. (Records written before the times were the system
    clock's carry the plan's time in both, so their difference means nothing.)"""
    found = {}
    for before, entry in itertools.pairwise(entries):
        if (
            before.record.get("status") == "started"
            and entry.record.get("status") in ("applied", "failed")
            and entry.record.get("plan_id") == before.record.get("plan_id")
        ):
            found[entry.seq] = before.time
    return found
