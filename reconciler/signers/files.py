"""CA keys as PEM files in a directory kept outside the Git repository.

Keys are written with mode 0600 in a 0700 directory, and a key file that others can read is refused
rather than used: a leaked CA key lets anyone sign routes for the CA's address space.

With a passphrase (rpki.yaml's ``passphrase_env``), key files are also encrypted at rest: PKCS#8 with the
best encryption ``cryptography`` offers (PBES2, AES-256-CBC). The passphrase is held only in memory and
never appears in a message; messages name the environment variable that holds it instead.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import os
import queue
import re
import shlex
import stat
import threading
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

import reconciler
from reconciler.fsutil import ReadError, file_kind, fsync_dir, read_bytes
from reconciler.signers.base import RSA_KEY_BITS, RSA_PUBLIC_EXPONENT, SignerError, key_id

#: The SHA-256 of each key file whose RSA consistency check passed, one per line (see ``_CheckedKeys``).
CHECKED_KEYS = ".checked-keys"

_ENCRYPTED_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


def _is_encrypted(pem: bytes) -> bool:
    """An encrypted PKCS#8 key, or a traditional (OpenSSL) PEM key with an encryption header."""
    return any(marker in pem for marker in _ENCRYPTED_MARKERS)


#: Where the operator reads how to restore a key file (the section's title, as the page spells it).
RESTORE_SECTION = 'docs/runbook.md, "A key file is damaged"'
RESTORE_ADVICE = f"restore it from your key backup (see {RESTORE_SECTION})"

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
#: The PEM labels of a private key this signer reads: PKCS#8, encrypted PKCS#8, traditional RSA.
_PRIVATE_KEY_LABELS = (b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY")


def _damaged(path: Path, what: str) -> SignerError:
    """A key file whose bytes are not (all of) a key: damage, never a reason to re-key or re-encrypt.
    ``what`` says what is wrong in the operator's words; it never quotes the file."""
    return SignerError(f"{path}: the key file is damaged ({what}): {RESTORE_ADVICE}")


def _pem_damage(pem: bytes) -> str | None:
    """What is wrong with the PEM wrapping of ``pem``, or None when it holds one whole block.

    Checked before anything else: a cut-off or overwritten file would otherwise be taken for an
    unencrypted key (its encryption header is gone) and the operator told to encrypt it, or be reported
    in the words of the cryptography library. Nothing of the file's content is ever put in the answer.
    """
    if not pem.strip():
        return "it is empty"
    begin = _PEM_BEGIN.search(pem)
    if begin is None:
        return "it holds no '-----BEGIN ...-----' line: it is not a PEM key file"
    label = begin.group(1)
    end = pem.find(b"-----END " + label + b"-----", begin.end())
    if end < 0:
        return "it is cut short: its '-----END' line is missing"
    if label not in _PRIVATE_KEY_LABELS:
        return None  # a whole PEM block of something else: said by _other_content
    first_line = pem.count(b"\n", 0, begin.end()) + 1
    data: list[bytes] = []
    for offset, raw in enumerate(pem[begin.end() : end].split(b"\n")):
        line = raw.strip()
        if not line or (b":" in line and not data):  # RFC 1421 headers of a traditional encrypted key
            continue
        if not _BASE64_LINE.fullmatch(line):
            return f"line {first_line + offset} is not base64 text"
        data.append(line)
    try:
        der = base64.b64decode(b"".join(data), validate=True)
    except binascii.Error:
        return "its base64 text is cut short: part of the key is missing"
    return _der_damage(der)


def _der_damage(der: bytes) -> str | None:
    """Whether the key's DER is one whole ASN.1 SEQUENCE, as every private key is."""
    if len(der) < 2 or der[0] != 0x30:
        return "its content does not start as a key does"
    if der[1] < 0x80:
        header, length = 2, der[1]
    else:
        count = der[1] & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return "its content does not start as a key does"
        header, length = 2 + count, int.from_bytes(der[2 : 2 + count], "big")
    if header + length > len(der):
        return f"it is cut short: it holds {len(der)} of the key's {header + length} bytes"
    if header + length < len(der):
        return f"{len(der) - header - length} stray bytes follow the key"
    return None


def _other_content(path: Path, pem: bytes) -> SignerError | None:
    """A whole PEM block that is not a private key (a certificate, a public key...): the wrong file."""
    begin = _PEM_BEGIN.search(pem)
    if begin is None or begin.group(1) in _PRIVATE_KEY_LABELS:
        return None
    kind = begin.group(1).decode("ascii").lower()
    if kind.endswith("private key"):
        what = f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
        return SignerError(
            f"{path} holds {what}, not an RSA-{RSA_KEY_BITS} key (RFC 7935 requires one): it is not this "
            f"CA's key file; {RESTORE_ADVICE}"
        )
    return SignerError(
        f"{path} holds a PEM {kind}, not a private key: it is not this CA's key file; {RESTORE_ADVICE}"
    )


def _key_kind(key: PrivateKeyTypes) -> str:
    """The kind of a private key, as a message names it."""
    if isinstance(key, rsa.RSAPrivateKey):
        return f"an RSA-{key.key_size} key"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC ({key.curve.name}) key"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return "an EdDSA key"
    if isinstance(key, dsa.DSAPrivateKey):
        return "a DSA key"
    return "a key of another type"


class _CheckedKeys:
    """Key files whose consistency was checked in full, by the SHA-256 of their bytes.

    The check (OpenSSL's: are the factors prime, do the exponents fit) is what stands between a damaged
    key file and signatures no relying party accepts, and it costs some 40 ms a key: as much as
    the rest of a one-ROA change. Its verdict is a function of the file's bytes, so the same bytes are not
    checked twice; altered bytes (damage, a replaced key) have another digest and are checked again. A
    new release checks everything again, as it does for the reconciler's other caches. The list grows by
    a line a check, appended (a registry's first apply would otherwise rewrite it once per key); a line
    lost, or the whole file, costs one more check of that key, nothing else.
    """

    def __init__(self, directory: Path) -> None:
        self._path = directory / CHECKED_KEYS
        self._header = f"# rpki-reconciler {reconciler.__version__}: SHA-256 of key files checked in full\n"
        self._known: set[str] | None = None
        self._current = False  # the file on disk has this release's header
        self._lock = threading.Lock()

    def __contains__(self, digest: str) -> bool:
        return digest in self._read()

    def _read(self) -> set[str]:
        if self._known is None:
            try:
                lines = read_bytes(str(self._path)).decode("ascii").splitlines(keepends=True)
            except (OSError, ValueError):
                lines = []
            self._current = bool(lines) and lines[0] == self._header
            self._known = {line.strip() for line in lines[1:]} if self._current else set()
        return self._known

    def add(self, digest: str) -> None:
        """Remember a passed check; a file that cannot be written only means checking again next time."""
        with self._lock:
            self._read().add(digest)
            # O_NONBLOCK: a FIFO planted here fails at once (ENXIO) instead of waiting for a reader.
            flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | (os.O_APPEND if self._current else os.O_TRUNC)
            line = (digest + "\n").encode()
            try:
                fd = os.open(self._path, flags, 0o600)
                try:
                    os.write(fd, line if self._current else self._header.encode() + line)
                finally:
                    os.close(fd)
            except OSError:
                return
            self._current = True


def _unreadable(path: Path, exc: OSError) -> SignerError:
    """A key file that is there but cannot be read: a read problem, with a fix for reading."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        fix = f"the user running rpkictl must own it, mode 0600: chown <that user> {path} && chmod 600 {path}"
    elif exc.errno == errno.EINVAL:
        fix = f"a key file is a regular file: move what is at {path} away and restore the key from a backup"
    else:
        fix = "check the file system that holds the key directory"
    return SignerError(f"cannot read the key file {path}: {why} (fix: {fix})")


class FileSigner:
    """One PEM file per key, named ``<label>.pem``; encrypted with ``passphrase`` when one is given.

    ``passphrase_env`` only names the environment variable the passphrase came from, for messages.

    With a passphrase, every key file must be encrypted: an unencrypted key file is refused, not used.
    Whoever configured a passphrase relies on the keys being encrypted at rest (e.g. in backups of the key
    directory); quietly signing with a plaintext key would hide that one is not, and a plaintext file in an
    encrypted directory may not even be the operator's own. The message says how to encrypt it in place.
    Without a passphrase, an encrypted key file is refused too, with the fix (set ``passphrase_env``).
    """

    concurrent_keygen = True  # create_key may run in several threads at once (one file per key)

    def __init__(
        self, directory: Path, passphrase: bytes | None = None, passphrase_env: str | None = None
    ) -> None:
        if passphrase is not None and not passphrase:
            raise SignerError(
                f"the passphrase for the keys in {directory} is empty"
                + (f" (fix: export {passphrase_env}=<the key passphrase>)" if passphrase_env else "")
            )
        self.directory = directory
        self._passphrase = passphrase
        self._passphrase_env = passphrase_env
        self._by_id: dict[bytes, rsa.RSAPrivateKey] = {}
        self._by_label: dict[str, bytes] = {}
        self._checked: set[bytes] = set()  # keys loaded with their consistency checked, or made here
        self._checked_files = _CheckedKeys(directory)

    def __repr__(self) -> str:  # never the passphrase
        return f"FileSigner(directory={str(self.directory)!r}, encrypted={self._passphrase is not None})"

    def _passphrase_source(self) -> str:
        if self._passphrase_env:
            return f"the passphrase from the environment variable {self._passphrase_env}"
        return "the configured passphrase"

    def _path(self, label: str) -> Path:
        return self.directory / f"{label}.pem"

    def key_location(self, label: str) -> str:
        """Where the key of ``label`` would be, for a message about a key that is not there; says so
        when the whole directory is missing or holds no key at all (an unmounted volume looks like
        that)."""
        path = self._path(label)
        try:
            names = [entry.name for entry in self.directory.iterdir()]
        except FileNotFoundError:
            return f"no file {path}; the directory {self.directory} does not exist: is it mounted?"
        except OSError as exc:
            return f"no file {path}; the directory {self.directory} cannot be listed: {exc.strerror}"
        if not any(name.endswith(".pem") for name in names):
            return f"no file {path}; the directory {self.directory} holds no key file: is it mounted?"
        return f"no file {path}"

    def _load(self, path: Path, *, checked: bool = False, mode: int | None = None) -> rsa.RSAPrivateKey:
        """``mode``: the file's, when the caller has just read it."""
        try:
            mode = path.stat().st_mode if mode is None else mode
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        if not stat.S_ISREG(mode):
            raise _unreadable(
                path, ReadError(errno.EINVAL, f"{file_kind(mode)}, not a regular file", str(path))
            )
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SignerError(
                f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                f"refusing to use it (fix: chmod 600 {path})"
            )
        try:
            pem = read_bytes(str(path))
        except ReadError as exc:
            raise _unreadable(path, exc) from exc
        damage = _pem_damage(pem)
        if damage is not None:
            raise _damaged(path, damage)
        other = _other_content(path, pem)
        if other is not None:
            raise other
        encrypted = _is_encrypted(pem)
        if encrypted and self._passphrase is None:
            raise SignerError(
                f"{path} is encrypted, but this file signer has no passphrase (fix: set "
                "passphrase_env: <VARIABLE> on the signer with this directory in rpki.yaml, and export "
                "VARIABLE=<the key passphrase>)"
            )
        # Checking an RSA key's consistency costs tens of milliseconds (a primality test of its factors);
        # a registry holds tens of thousands of keys and a plan only needs their identifiers. A key is
        # checked in full before its first signature (``_key``), unless these very bytes passed before.
        digest = hashlib.sha256(pem).hexdigest() if checked else ""
        check = checked and digest not in self._checked_files
        # An unencrypted file is read before it is refused for lacking encryption: a damaged file or a
        # key of the wrong type is said to be that, not to need encrypting.
        key = self._decrypt(path, pem, check) if encrypted else _read_plain(path, pem, check)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != RSA_KEY_BITS:
            raise SignerError(
                f"{path} holds {_key_kind(key)}, not an RSA-{RSA_KEY_BITS} key (RFC 7935 requires one): "
                f"it is not this CA's key file; {RESTORE_ADVICE}"
            )
        if not encrypted and self._passphrase is not None:
            variable = self._passphrase_env or "VARIABLE"
            plain, encrypted_copy = shlex.quote(str(path)), shlex.quote(f"{path}.enc")
            raise SignerError(
                f"{path} is not encrypted, but this file signer has a passphrase; refusing to use an "
                f"unencrypted key (fix: encrypt it in place with: (umask 077 && openssl pkcs8 -topk8 "
                f"-v2 aes-256-cbc -in {plain} -out {encrypted_copy} -passout env:{variable}) && "
                f"mv {encrypted_copy} {plain} -- or remove passphrase_env from the signer in rpki.yaml)"
            )
        if check:
            self._checked_files.add(digest)
        return key

    def _decrypt(self, path: Path, pem: bytes, check: bool) -> PrivateKeyTypes:
        """The key of an encrypted file whose wrapping is whole: one that does not decrypt was most
        likely given the wrong passphrase, which is what the message leads with."""
        try:
            return serialization.load_pem_private_key(
                pem, password=self._passphrase, unsafe_skip_rsa_key_validation=not check
            )
        except (ValueError, TypeError):  # the library's message never holds the passphrase; do not risk it
            fix = (
                f"export the right passphrase in {self._passphrase_env}"
                if self._passphrase_env
                else "use the right passphrase"
            )
            raise SignerError(
                f"{path} cannot be decrypted with {self._passphrase_source()}: the passphrase is wrong "
                f"(fix: {fix}; if it is the right one, the key file is damaged: "
                f"restore it from your key backup, see {RESTORE_SECTION})"
            ) from None

    def _remember(self, label: str, key: rsa.RSAPrivateKey) -> bytes:
        kid = key_id(key.public_key())
        self._by_id[kid] = key
        self._by_label[label] = kid
        return kid

    def find_key(self, label: str) -> bytes | None:
        if label in self._by_label:
            return self._by_label[label]
        path = self._path(label)
        try:  # one system call for "is it there" and "who may read it": a registry has thousands of keys
            mode = path.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        return self._remember(label, self._load(path, mode=mode))

    def create_key(self, label: str) -> bytes:
        path = self._path(label)
        if path.exists():
            raise SignerError(f"a key labelled {label!r} already exists at {path}")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SignerError(f"cannot create the key directory {self.directory}: {exc.strerror}") from exc
        key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption()
            if self._passphrase is None
            else serialization.BestAvailableEncryption(self._passphrase)
        )
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        tmp = path.with_suffix(".pem.tmp")
        try:  # left by an interrupted create_key; whatever else is there is not ours to write through
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise SignerError(
                f"cannot write the new key file {tmp}: {exc.strerror} (fix: remove what is at {tmp})"
            ) from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        fsync_dir(self.directory)
        kid = self._remember(label, key)
        self._checked.add(kid)
        return kid

    def _key(self, key: bytes) -> rsa.RSAPrivateKey:
        """The private key, checked in full before its first use (see ``_load``)."""
        try:
            found = self._by_id[key]
        except KeyError:
            raise SignerError(f"no key with identifier {key.hex()} in {self.directory}") from None
        if key not in self._checked:
            label = next(label for label, kid in self._by_label.items() if kid == key)
            found = self._load(self._path(label), checked=True)
            if key_id(found.public_key()) != key:
                raise SignerError(f"{self._path(label)} changed while in use; run the command again")
            self._by_id[key] = found
            self._checked.add(key)
        return found

    def public_key(self, key: bytes) -> rsa.RSAPublicKey:
        try:
            return self._by_id[key].public_key()
        except KeyError:
            raise SignerError(f"no key with identifier {key.hex()} in {self.directory}") from None

    def sign(self, key: bytes, data: bytes) -> bytes:
        return self._key(key).sign(data, padding.PKCS1v15(), hashes.SHA256())

    def _label_of(self, key: bytes) -> str | None:
        """The label of the key with this identifier, looking through the directory if need be."""
        for label, kid in self._by_label.items():
            if kid == key:
                return label
        try:
            paths = sorted(self.directory.glob("*.pem"))
        except OSError as exc:
            raise SignerError(f"cannot list the key directory {self.directory}: {exc.strerror}") from exc
        for path in paths:
            if path.stem not in self._by_label and self.find_key(path.stem) == key:
                return path.stem
        return None

    def destroy_key(self, key: bytes) -> None:
        """Remove the key's file for good (no copy is kept); backups of the directory still hold it."""
        label = self._label_of(key)
        if label is None:
            raise SignerError(f"no key with identifier {key.hex()} in {self.directory}")
        path = self._path(label)
        try:
            path.unlink()
        except FileNotFoundError:
            pass  # removed behind our back: gone either way
        except OSError as exc:
            raise SignerError(f"cannot remove the key file {path}: {exc.strerror}") from exc
        self._by_label.pop(label, None)
        self._by_id.pop(key, None)
        fsync_dir(self.directory)


def _read_plain(path: Path, pem: bytes, check: bool) -> PrivateKeyTypes:
    """The key of an unencrypted file whose wrapping is whole; a key that does not parse, or whose RSA
    numbers do not fit together, is damaged (the library's own words, and its FAQ link, are not shown)."""
    try:
        return serialization.load_pem_private_key(
            pem, password=None, unsafe_skip_rsa_key_validation=not check
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    if check:
        try:
            serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            pass
        else:
            raise _damaged(path, "its RSA numbers do not fit together") from None
    raise _damaged(path, "its content does not parse as a private key") from None


class OneTimeKey:
    """A software key used for exactly one EE certificate and then forgotten (RFC 6487 §3)."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
        self.public = self.private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


#: One-time keys made ahead, in the background, by a process that will sign soon (``apply.onetime``):
#: whoever signs first takes them -- the EE certificates of the objects, and those of the protocol
#: messages an apply under an external parent sends before it signs anything.
MADE_AHEAD: queue.SimpleQueue[OneTimeKey] = queue.SimpleQueue()


def made_ahead() -> OneTimeKey | None:
    """A key made ahead and ready now, if there is one."""
    try:
        return MADE_AHEAD.get_nowait()
    except queue.Empty:
        return None
