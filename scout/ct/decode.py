"""Pure decoding: CT log entry bytes -> a certstream `certificate_update` frame.

Nothing here does I/O. The frame shape is certstream-server-go's full stream (models/certstream.go), field
for field, so the rest of scout cannot tell a directly-read entry from one that came over a websocket:

- `leaf_cert` of an X.509 entry is that certificate; of a precertificate entry it is the *submitted
  precertificate* (with its poison extension, so `extensions.ctlPoisonByte` is true), and the hashes are
  of that DER;
- `all_domains` is the SAN DNS names in certificate order, plus the subject CN when it is non-empty,
  the certificate is not a CA, and the CN is not already listed (not lower-cased, not de-duplicated);
- `subject`/`issuer` follow Go's pkix.Name: repeated attributes joined with ",", the last CN wins, and
  `ST` carries the *street address* (certstream-server-go's long-standing mapping; state is not shown).

Wire formats (RFC 6962 §3.4, C2SP static-ct-api):

    MerkleTreeLeaf   = version(1) leaf_type(1) TimestampedEntry
    TimestampedEntry = timestamp(8) entry_type(2)
                       x509:    cert<3>                          then extensions<2>
                       precert: issuer_key_hash[32] tbs<3>       then extensions<2>
    extra_data       = x509:    chain<3>{cert<3>...}
                       precert: pre_certificate<3> chain<3>{cert<3>...}
    TileLeaf         = TimestampedEntry [pre_certificate<3> if precert] fingerprints<2>{sha256[32]...}
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from scout.ct.malformed import MalformedEntry, TruncatedTile

X509_ENTRY = 0
PRECERT_ENTRY = 1
UPDATE_TYPES = {X509_ENTRY: "X509LogEntry", PRECERT_ENTRY: "PrecertLogEntry"}
LEAF_INDEX_EXTENSION = 0        # static-ct-api: CtExtensions carry the 40-bit leaf index


# ---------------------------------------------------------------------------------------------------
# TLS-style byte reading

class _Reader:
    """Reads big-endian integers and length-prefixed vectors; any overrun raises MalformedEntry."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise MalformedEntry("truncated", f"{what}: need {n} bytes at offset {self.pos}, have {len(self.buf) - self.pos}")
        out = self.buf[self.pos:end]
        self.pos = end
        return out

    def uint(self, n: int, what: str) -> int:
        return int.from_bytes(self.take(n, what), "big")

    def vector(self, len_bytes: int, what: str) -> bytes:
        return self.take(self.uint(len_bytes, what + " length"), what)

    def done(self) -> bool:
        return self.pos >= len(self.buf)


@dataclass
class LogEntry:
    """One decoded log entry, before certificate parsing. `chain` holds DERs (RFC 6962) or, for tiles,
    is empty and `chain_fingerprints` names the issuers to fetch."""

    timestamp: int                      # milliseconds since the epoch, from the TimestampedEntry
    entry_type: int                     # X509_ENTRY or PRECERT_ENTRY
    cert_der: bytes                     # the X.509 certificate, or the submitted precertificate
    chain: list = field(default_factory=list)
    chain_fingerprints: list = field(default_factory=list)
    issuer_key_hash: bytes = b""
    tbs: bytes = b""                    # precert TBSCertificate as logged (poison removed)
    leaf_index: int | None = None       # static-ct-api only


def _timestamped_entry(r: _Reader) -> tuple[int, int, bytes, bytes, bytes]:
    """-> (timestamp, entry_type, cert_or_tbs, issuer_key_hash, extensions)."""
    timestamp = r.uint(8, "timestamp")
    entry_type = r.uint(2, "entry_type")
    if entry_type == X509_ENTRY:
        signed, ikh = r.vector(3, "certificate"), b""
    elif entry_type == PRECERT_ENTRY:
        ikh = r.take(32, "issuer_key_hash")
        signed = r.vector(3, "tbs_certificate")
    else:
        raise MalformedEntry("entry_type", f"unknown entry type {entry_type}")
    extensions = r.vector(2, "extensions")
    return timestamp, entry_type, signed, ikh, extensions


def _cert_list(data: bytes, what: str) -> list[bytes]:
    r = _Reader(data)
    out = []
    while not r.done():
        out.append(r.vector(3, what))
    return out


def parse_rfc6962_entry(leaf_input: bytes, extra_data: bytes) -> LogEntry:
    """A get-entries item (already base64-decoded) -> LogEntry. Raises MalformedEntry."""
    r = _Reader(leaf_input)
    version, leaf_type = r.uint(1, "version"), r.uint(1, "leaf_type")
    if version != 0 or leaf_type != 0:
        raise MalformedEntry("leaf_version", f"MerkleTreeLeaf version {version}, leaf type {leaf_type}")
    timestamp, entry_type, signed, ikh, _ext = _timestamped_entry(r)
    if not r.done():
        raise MalformedEntry("trailing_bytes", f"{len(leaf_input) - r.pos} bytes after the MerkleTreeLeaf")
    x = _Reader(extra_data)
    if entry_type == X509_ENTRY:
        chain = _cert_list(x.vector(3, "certificate_chain"), "chain certificate")
        return LogEntry(timestamp, entry_type, signed, chain)
    precert = x.vector(3, "pre_certificate")
    chain = _cert_list(x.vector(3, "precertificate_chain"), "chain certificate")
    return LogEntry(timestamp, entry_type, precert, chain, issuer_key_hash=ikh, tbs=signed)


def _leaf_index(extensions: bytes) -> int | None:
    r = _Reader(extensions)
    while not r.done():
        ext_type = r.uint(1, "extension_type")
        data = r.vector(2, "extension_data")
        if ext_type == LEAF_INDEX_EXTENSION:
            if len(data) != 5:
                raise MalformedEntry("leaf_index", f"leaf_index of {len(data)} bytes")
            return int.from_bytes(data, "big")
    return None


def parse_data_tile(data: bytes, expected: int, first_index: int = 0) -> tuple[list, TruncatedTile | None]:
    """A static-ct-api data tile -> ([LogEntry or MalformedEntry, ...], error).

    Framing errors stop the parse: the entries before the break are returned with a TruncatedTile (fetch
    the tile again for the rest). A well-framed entry whose own fields are wrong (an unknown entry type
    cannot be framed, so that also stops the parse; a bad leaf_index does not) comes back as a
    MalformedEntry in its slot, to be counted and skipped.
    """
    r = _Reader(data)
    out: list = []
    while len(out) < expected:
        start = r.pos
        try:
            timestamp, entry_type, signed, ikh, ext = _timestamped_entry(r)
            precert = r.vector(3, "pre_certificate") if entry_type == PRECERT_ENTRY else b""
            fps = r.vector(2, "certificate_chain")
        except MalformedEntry as e:
            return out, TruncatedTile(len(out), expected, f"(at byte {start}: {e})")
        if len(fps) % 32:
            out.append(MalformedEntry("fingerprints", f"chain of {len(fps)} bytes is not a list of SHA-256 hashes"))
            continue
        fingerprints = [fps[i:i + 32] for i in range(0, len(fps), 32)]
        try:
            leaf_index = _leaf_index(ext)
        except MalformedEntry as e:
            out.append(e)
            continue
        want = first_index + len(out)
        if leaf_index is not None and leaf_index != want:
            out.append(MalformedEntry("leaf_index", f"entry says leaf_index {leaf_index}, position is {want}"))
            continue
        if entry_type == X509_ENTRY:
            out.append(LogEntry(timestamp, entry_type, signed, chain_fingerprints=fingerprints, leaf_index=leaf_index))
        else:
            out.append(LogEntry(timestamp, entry_type, precert, chain_fingerprints=fingerprints,
                                issuer_key_hash=ikh, tbs=signed, leaf_index=leaf_index))
    if not r.done():
        return out, TruncatedTile(len(out), expected, f"({len(data) - r.pos} bytes after the last entry)")
    return out, None


# ---------------------------------------------------------------------------------------------------
# Certificate -> certstream leaf_cert dict

_SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.2": "md2, rsa",
    "1.2.840.113549.1.1.4": "md5, rsa",
    "1.2.840.113549.1.1.5": "sha1, rsa",
    "1.3.14.3.2.29": "sha1, rsa",
    "1.2.840.113549.1.1.11": "sha256, rsa",
    "1.2.840.113549.1.1.12": "sha384, rsa",
    "1.2.840.113549.1.1.13": "sha512, rsa",
    "1.2.840.10040.4.3": "dsa, sha1",
    "2.16.840.1.101.3.4.3.2": "dsa, sha256",
    "1.2.840.10045.4.1": "ecdsa, sha1",
    "1.2.840.10045.4.3.2": "ecdsa, sha256",
    "1.2.840.10045.4.3.3": "ecdsa, sha384",
    "1.2.840.10045.4.3.4": "ecdsa, sha512",
    "1.3.101.112": "ed25519",
}
_RSA_PSS = "1.2.840.113549.1.1.10"

_NAME_FIELDS = {            # OID -> certstream subject key (Go pkix.Name field it comes from)
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.STREET_ADDRESS: "ST",
}

_KEY_USAGE = (
    ("digital_signature", "Digital Signature"),
    ("content_commitment", "Content Commitment"),
    ("key_encipherment", "Key Encipherment"),
    ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"),
    ("key_cert_sign", "Certificate Signing"),
    ("crl_sign", "CRL Signing"),
)

_OID_AKI = ExtensionOID.AUTHORITY_KEY_IDENTIFIER
_OID_SKI = ExtensionOID.SUBJECT_KEY_IDENTIFIER
_OID_KU = ExtensionOID.KEY_USAGE
_OID_BC = ExtensionOID.BASIC_CONSTRAINTS
_OID_SAN = ExtensionOID.SUBJECT_ALTERNATIVE_NAME
_OID_AIA = ExtensionOID.AUTHORITY_INFORMATION_ACCESS
_OID_POLICIES = ExtensionOID.CERTIFICATE_POLICIES
_OID_POISON = ExtensionOID.PRECERT_POISON
_OCSP = x509.oid.AuthorityInformationAccessOID.OCSP
_CA_ISSUERS = x509.oid.AuthorityInformationAccessOID.CA_ISSUERS


def _colon_hex_upper(digest: bytes) -> str:
    return digest.hex(":").upper()


def _key_id(keyid: bytes | None) -> str:
    return "keyid:" + (keyid.hex(":") if keyid else "")


def _serial(n: int) -> str:
    s = ("-" if n < 0 else "") + format(abs(n), "X")
    return "0" + s if len(s) % 2 else s


def _name(name: x509.Name) -> dict:
    values: dict[str, list[str]] = {}
    cn = ""
    for attr in name:
        oid = attr.oid
        if oid == NameOID.COMMON_NAME:
            cn = attr.value if isinstance(attr.value, str) else cn
            continue
        key = _NAME_FIELDS.get(oid)
        if key is not None and isinstance(attr.value, str):
            values.setdefault(key, []).append(attr.value)
    c, l_, o, ou, st = (",".join(values[k]) if k in values else None for k in ("C", "L", "O", "OU", "ST"))
    agg = []
    if c is not None:
        agg.append("/C=" + c)
    agg.append("/CN=" + cn)
    for k, v in (("L", l_), ("O", o), ("OU", ou), ("ST", st)):
        if v is not None:
            agg.append(f"/{k}={v}")
    return {"C": c, "CN": cn, "L": l_, "O": o, "OU": ou, "ST": st, "aggregated": "".join(agg),
            "email_address": None}


def _ip_text(ip) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)          # Go prints a v4-mapped address as dotted quad
    return str(ip)


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid.dotted_string
    name = _SIGNATURE_ALGORITHMS.get(oid)
    if name is not None:
        return name
    if oid == _RSA_PSS:
        try:
            h = cert.signature_hash_algorithm
        except Exception:           # unsupported parameters
            return "unknown"
        if h is not None and h.name in ("sha256", "sha384", "sha512"):
            return f"{h.name}, rsa-pss"
    return "unknown"


def _timestamp(cert: x509.Certificate, which: str) -> int:
    return int(getattr(cert, which).timestamp())


def leaf_cert_fields(der: bytes) -> dict:
    """DER certificate (or precertificate) -> certstream `leaf_cert` dict. Raises MalformedEntry."""
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = _name(cert.subject)
        issuer = _name(cert.issuer)
        not_before = _timestamp(cert, "not_valid_before_utc")
        not_after = _timestamp(cert, "not_valid_after_utc")
        serial = _serial(cert.serial_number)
        sig = _signature_algorithm(cert)
    except ValueError as e:
        raise MalformedEntry("certificate", str(e)) from None
    try:
        exts = cert.extensions
    except ValueError:
        exts = ()          # e.g. a duplicated extension: keep the rest of the certificate
    domains: list[str] = []
    is_ca = False
    ext_out: dict = {}
    aia = aki = bc = pol = ku = san = ski = None
    poison = False
    for ext in exts:
        oid, v = ext.oid, ext.value
        if oid == _OID_SAN:
            dns, emails, ips = [], [], []
            for gn in v:
                if isinstance(gn, x509.DNSName):
                    dns.append(gn.value)
                elif isinstance(gn, x509.RFC822Name):
                    emails.append(gn.value)
                elif isinstance(gn, x509.IPAddress) and not isinstance(gn.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                    ips.append(_ip_text(gn.value))
            domains = dns
            san = ", ".join(["DNS:" + d for d in dns] + ["email:" + m for m in emails] + ["IP Address:" + i for i in ips])
        elif oid == _OID_BC:
            is_ca = bool(v.ca)
            bc = "CA:TRUE" if is_ca else "CA:FALSE"
        elif oid == _OID_AKI:
            aki = _key_id(v.key_identifier)
        elif oid == _OID_SKI:
            ski = _key_id(v.digest)
        elif oid == _OID_KU:
            parts = [label for attr, label in _KEY_USAGE if getattr(v, attr)]
            if v.key_agreement:
                if v.encipher_only:
                    parts.append("Encipher Only")
                if v.decipher_only:
                    parts.append("Decipher Only")
            ku = ", ".join(parts)
        elif oid == _OID_AIA:
            issuers = ["URI:" + d.access_location.value for d in v
                       if d.access_method == _CA_ISSUERS and isinstance(d.access_location, x509.UniformResourceIdentifier)]
            ocsp = ["URI:" + d.access_location.value for d in v
                    if d.access_method == _OCSP and isinstance(d.access_location, x509.UniformResourceIdentifier)]
            aia = ", ".join(issuers + ocsp)
        elif oid == _OID_POLICIES:
            pol = "".join(f"Policy: {p.policy_identifier.dotted_string}\n" for p in v)
        elif oid == _OID_POISON:
            poison = True
    # Same key order as certstream-server-go's Extensions struct (omitempty fields left out).
    for key, value in (("authorityInfoAccess", aia), ("authorityKeyIdentifier", aki), ("basicConstraints", bc),
                       ("certificatePolicies", pol), ("keyUsage", ku), ("subjectAltName", san),
                       ("subjectKeyIdentifier", ski)):
        if value is not None:
            ext_out[key] = value
    if poison:
        ext_out["ctlPoisonByte"] = True
    cn = subject["CN"]
    if cn and not is_ca and cn not in domains:
        domains = domains + [cn]
    sha1 = _colon_hex_upper(hashlib.sha1(der).digest())
    return {
        "all_domains": domains,
        "as_der": base64.b64encode(der).decode("ascii"),
        "extensions": ext_out,
        "fingerprint": sha1,
        "sha1": sha1,
        "sha256": _colon_hex_upper(hashlib.sha256(der).digest()),
        "not_after": not_after,
        "not_before": not_before,
        "serial_number": serial,
        "signature_algorithm": sig,
        "subject": subject,
        "issuer": issuer,
        "is_ca": is_ca,
    }


def _copy_leaf(d: dict) -> dict:
    """A copy deep enough that a consumer editing one frame cannot change a cached chain entry."""
    out = dict(d)
    out["all_domains"] = list(d["all_domains"])
    out["extensions"] = dict(d["extensions"])
    out["subject"] = dict(d["subject"])
    out["issuer"] = dict(d["issuer"])
    return out


class ChainCache:
    """LRU of decoded chain certificates: a handful of intermediates sign almost every entry."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._data: OrderedDict[bytes, dict] = OrderedDict()
        self._lock = Lock()

    def get(self, der: bytes) -> dict:
        key = hashlib.sha256(der).digest()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
        if hit is None:
            hit = leaf_cert_fields(der)
            with self._lock:
                self._data[key] = hit
                if len(self._data) > self._size:
                    self._data.popitem(last=False)
        return _copy_leaf(hit)


_DEFAULT_CHAIN_CACHE = ChainCache()


@dataclass(frozen=True)
class SourceInfo:
    """What a frame says about the log it came from."""

    name: str
    url: str            # without a trailing slash, as certstream-server-go prints it
    type: str           # "rfc6962" or "tiled"


def build_frame(entry: LogEntry, index: int, source: SourceInfo, chain: list | None = None,
                seen: float | None = None, chain_cache: ChainCache | None = None) -> dict:
    """LogEntry + position -> {"message_type": "certificate_update", "data": {...}}. Raises MalformedEntry.

    `chain` (DERs) overrides entry.chain — the tiled reader passes the issuers it fetched. A chain
    certificate that does not parse makes the entry malformed, as in certstream-server-go.
    """
    leaf = leaf_cert_fields(entry.cert_der)
    cache = chain_cache or _DEFAULT_CHAIN_CACHE
    chain_out = [cache.get(der) for der in (entry.chain if chain is None else chain)]
    link = f"{source.url}/ct/v1/get-entries?start={index}&end={index}" if source.type == "rfc6962" else ""
    return {
        "data": {
            "cert_index": index,
            "cert_link": link,
            "chain": chain_out,
            "leaf_cert": leaf,
            "seen": round(time.time() if seen is None else seen, 3),
            "source": {"name": source.name, "url": source.url, "timestamp": entry.timestamp / 1000,
                       "type": source.type},
            "update_type": UPDATE_TYPES[entry.entry_type],
        },
        "message_type": "certificate_update",
    }


def decode_rfc6962(leaf_input_b64: str, extra_data_b64: str, index: int, source: SourceInfo,
                   chain_cache: ChainCache | None = None) -> dict:
    """One get-entries item, as served (base64) -> frame. Raises MalformedEntry."""
    try:
        leaf_input = base64.b64decode(leaf_input_b64, validate=True)
        extra_data = base64.b64decode(extra_data_b64, validate=True)
    except (ValueError, TypeError) as e:
        raise MalformedEntry("base64", str(e)) from None
    return build_frame(parse_rfc6962_entry(leaf_input, extra_data), index, source, chain_cache=chain_cache)
