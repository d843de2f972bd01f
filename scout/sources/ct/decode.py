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
import binascii
import hashlib
import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from scout.sources.ct.der import DerError as _DerError
from scout.sources.ct.der import element as _tlv
from scout.sources.ct.malformed import MalformedEntry, TruncatedTile

X509_ENTRY = 0
PRECERT_ENTRY = 1
UPDATE_TYPES = {X509_ENTRY: "X509LogEntry", PRECERT_ENTRY: "PrecertLogEntry"}
LEAF_INDEX_EXTENSION = 0        # static-ct-api: CtExtensions carry the 40-bit leaf index


# ---------------------------------------------------------------------------------------------------
# TLS-style byte reading

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


def _vector(buf: bytes, pos: int, len_bytes: int, what: str) -> tuple[bytes, int]:
    """A length-prefixed field at pos -> (its bytes, position after it). Raises MalformedEntry."""
    start = pos + len_bytes
    if start > len(buf):
        raise MalformedEntry("truncated", f"{what} length at offset {pos}")
    end = start + int.from_bytes(buf[pos:start], "big")
    if end > len(buf):
        raise MalformedEntry("truncated", f"{what}: need {end - start} bytes at offset {start}, have {len(buf) - start}")
    return buf[start:end], end


def _timestamped_entry(buf: bytes, pos: int) -> tuple[int, int, bytes, bytes, bytes, int]:
    """TimestampedEntry at pos -> (timestamp, entry_type, cert_or_tbs, issuer_key_hash, extensions, end)."""
    if pos + 10 > len(buf):
        raise MalformedEntry("truncated", f"TimestampedEntry header at offset {pos}")
    timestamp = int.from_bytes(buf[pos:pos + 8], "big")
    entry_type = (buf[pos + 8] << 8) | buf[pos + 9]
    pos += 10
    if entry_type == X509_ENTRY:
        signed, pos = _vector(buf, pos, 3, "certificate")
        ikh = b""
    elif entry_type == PRECERT_ENTRY:
        if pos + 32 > len(buf):
            raise MalformedEntry("truncated", "issuer_key_hash")
        ikh = buf[pos:pos + 32]
        signed, pos = _vector(buf, pos + 32, 3, "tbs_certificate")
    else:
        raise MalformedEntry("entry_type", f"unknown entry type {entry_type}")
    extensions, pos = _vector(buf, pos, 2, "extensions")
    return timestamp, entry_type, signed, ikh, extensions, pos


def _cert_list(data: bytes, what: str) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        cert, pos = _vector(data, pos, 3, what)
        out.append(cert)
    return out


def parse_rfc6962_entry(leaf_input: bytes, extra_data: bytes) -> LogEntry:
    """A get-entries item (already base64-decoded) -> LogEntry. Raises MalformedEntry."""
    if len(leaf_input) < 2 or leaf_input[0] != 0 or leaf_input[1] != 0:
        raise MalformedEntry("leaf_version", f"MerkleTreeLeaf does not start with version 1, timestamped_entry: {leaf_input[:2].hex()}")
    timestamp, entry_type, signed, ikh, _ext, pos = _timestamped_entry(leaf_input, 2)
    if pos != len(leaf_input):
        raise MalformedEntry("trailing_bytes", f"{len(leaf_input) - pos} bytes after the MerkleTreeLeaf")
    if entry_type == X509_ENTRY:
        chain_bytes, _ = _vector(extra_data, 0, 3, "certificate_chain")
        return LogEntry(timestamp, entry_type, signed, _cert_list(chain_bytes, "chain certificate"))
    precert, pos = _vector(extra_data, 0, 3, "pre_certificate")
    chain_bytes, _ = _vector(extra_data, pos, 3, "precertificate_chain")
    return LogEntry(timestamp, entry_type, precert, _cert_list(chain_bytes, "chain certificate"),
                    issuer_key_hash=ikh, tbs=signed)


def _leaf_index(extensions: bytes) -> int | None:
    pos = 0
    while pos < len(extensions):
        ext_type = extensions[pos]
        data, pos = _vector(extensions, pos + 1, 2, "extension_data")
        if ext_type == LEAF_INDEX_EXTENSION:
            if len(data) != 5:
                raise MalformedEntry("leaf_index", f"leaf_index of {len(data)} bytes")
            return int.from_bytes(data, "big")
    return None


def parse_data_tile(data: bytes, expected: int, first_index: int = 0) -> tuple[list, TruncatedTile | None]:
    """A static-ct-api data tile -> ([LogEntry or MalformedEntry, ...], error).

    Framing errors stop the parse: the entries before the break are returned with a TruncatedTile (fetch
    the tile again for the rest). A well-framed entry whose own fields are wrong (bad chain length, a
    leaf_index that disagrees with its position) comes back as a MalformedEntry in its slot, to be
    counted and skipped.
    """
    out: list = []
    pos = 0
    while len(out) < expected:
        start = pos
        try:
            timestamp, entry_type, signed, ikh, ext, pos = _timestamped_entry(data, pos)
            precert, pos = _vector(data, pos, 3, "pre_certificate") if entry_type == PRECERT_ENTRY else (b"", pos)
            fps, pos = _vector(data, pos, 2, "certificate_chain")
        except MalformedEntry as e:
            return out, TruncatedTile(len(out), expected, f"(at byte {start}: {e})")
        if len(fps) % 32:
            out.append(MalformedEntry("fingerprints", f"chain of {len(fps)} bytes is not a list of SHA-256 hashes"))
            continue
        try:
            leaf_index = _leaf_index(ext)
        except MalformedEntry as e:
            out.append(e)
            continue
        want = first_index + len(out)
        if leaf_index is not None and leaf_index != want:
            out.append(MalformedEntry("leaf_index", f"entry says leaf_index {leaf_index}, position is {want}"))
            continue
        fingerprints = [fps[i:i + 32] for i in range(0, len(fps), 32)]
        if entry_type == X509_ENTRY:
            out.append(LogEntry(timestamp, entry_type, signed, chain_fingerprints=fingerprints, leaf_index=leaf_index))
        else:
            out.append(LogEntry(timestamp, entry_type, precert, chain_fingerprints=fingerprints,
                                issuer_key_hash=ikh, tbs=signed, leaf_index=leaf_index))
    if pos != len(data):
        return out, TruncatedTile(len(out), expected, f"({len(data) - pos} bytes after the last entry)")
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
    return _subject_dict(cn, values)


def _subject_dict(cn: str, values: dict[str, list[str]]) -> dict:
    """Go pkix.Name semantics: repeated attributes joined with ",", CN always present (maybe "")."""
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
    """DER certificate (or precertificate) -> certstream `leaf_cert` dict. Raises MalformedEntry.

    The subject and the extensions come from a small DER walk (`_der_parts`), and issuers from a cache,
    because building cryptography's Python objects for every name and extension costs more than the
    rest of the decode. Anything that walk does not expect sends the certificate through
    `reference_leaf_cert_fields`, the plain cryptography version; the tests check both give identical
    output. cryptography still loads every certificate (validity, serial, signature algorithm), so a
    certificate it rejects is malformed either way.
    """
    try:
        issuer_raw, subject, ext_list = _der_parts(der)
        exts = _fast_extensions(ext_list)
    except _DerError:
        return reference_leaf_cert_fields(der)
    try:
        cert = x509.load_der_x509_certificate(der)
        issuer = _ISSUERS.get(issuer_raw)
        if issuer is None:
            issuer = _name(cert.issuer)
            if len(_ISSUERS) >= _ISSUER_CACHE_SIZE:
                _ISSUERS.clear()
            _ISSUERS[issuer_raw] = issuer
        not_before = _timestamp(cert, "not_valid_before_utc")
        not_after = _timestamp(cert, "not_valid_after_utc")
        serial = _serial(cert.serial_number)
        sig = _signature_algorithm(cert)
    except ValueError as e:
        raise MalformedEntry("certificate", str(e)) from None
    domains, is_ca, ext_out = exts
    return _assemble(der, domains, is_ca, ext_out, subject, dict(issuer), not_before, not_after, serial, sig)


def _assemble(der, domains, is_ca, ext_out, subject, issuer, not_before, not_after, serial, sig) -> dict:
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


def _extensions_dict(aia, aki, bc, pol, ku, san, ski, poison) -> dict:
    """Same key order as certstream-server-go's Extensions struct (omitempty fields left out)."""
    out = {}
    for key, value in (("authorityInfoAccess", aia), ("authorityKeyIdentifier", aki), ("basicConstraints", bc),
                       ("certificatePolicies", pol), ("keyUsage", ku), ("subjectAltName", san),
                       ("subjectKeyIdentifier", ski)):
        if value is not None:
            out[key] = value
    if poison:
        out["ctlPoisonByte"] = True
    return out


def reference_leaf_cert_fields(der: bytes) -> dict:
    """The same result as leaf_cert_fields, computed only through cryptography's objects."""
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
    return _assemble(der, domains, is_ca, _extensions_dict(aia, aki, bc, pol, ku, san, ski, poison),
                     subject, issuer, not_before, not_after, serial, sig)


# ---------------------------------------------------------------------------------------------------
# Fast path: the parts of a certificate we need, read straight from its DER

_ISSUERS: dict[bytes, dict] = {}        # raw issuer Name -> subject dict (a few hundred CAs in practice)
_ISSUER_CACHE_SIZE = 4096

_E_SAN = bytes.fromhex("551d11")
_E_BC = bytes.fromhex("551d13")
_E_KU = bytes.fromhex("551d0f")
_E_SKI = bytes.fromhex("551d0e")
_E_AKI = bytes.fromhex("551d23")
_E_POLICIES = bytes.fromhex("551d20")
_E_AIA = bytes.fromhex("2b06010505070101")
_E_POISON = bytes.fromhex("2b06010401d679020403")
_AD_OCSP = bytes.fromhex("2b06010505073001")
_AD_CA_ISSUERS = bytes.fromhex("2b06010505073002")
_KU_LABELS = ("Digital Signature", "Content Commitment", "Key Encipherment", "Data Encipherment",
              "Key Agreement", "Certificate Signing", "CRL Signing", "Encipher Only", "Decipher Only")


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        t = _tlv(buf, start, end)
        out.append(t)
        start = t[2]
    return out


def _der_parts(der: bytes) -> tuple[bytes, dict, list[tuple[bytes, bytes]]]:
    """-> (raw issuer Name, subject dict, [(extension OID bytes, extension value bytes), ...])."""
    try:
        n = len(der)
        tag, s, e = _tlv(der, 0, n)
        if tag != 0x30 or e != n:
            raise _DerError
        tag, s, tbs_end = _tlv(der, s, e)                  # TBSCertificate
        if tag != 0x30:
            raise _DerError
        tag, cs, ce = _tlv(der, s, tbs_end)
        if tag == 0xA0:                                     # [0] version, then the serial
            tag, cs, ce = _tlv(der, ce, tbs_end)
        tag, cs, ce = _tlv(der, ce, tbs_end)                # signature algorithm
        tag, cs, ce = _tlv(der, ce, tbs_end)                # issuer
        if tag != 0x30:
            raise _DerError
        issuer_raw = der[cs:ce]
        tag, cs, ce = _tlv(der, ce, tbs_end)                # validity
        tag, cs, ce = _tlv(der, ce, tbs_end)                # subject
        if tag != 0x30:
            raise _DerError
        subject = _fast_name(der, cs, ce)
        exts: list[tuple[bytes, bytes]] = []
        pos = ce
        while pos < tbs_end:                                # subject public key, [1], [2], [3]
            tag, cs, pos = _tlv(der, pos, tbs_end)
            if tag != 0xA3:
                continue
            tag, xs, xe = _tlv(der, cs, pos)
            if tag != 0x30 or xe != pos:
                raise _DerError
            _extension_list(der, xs, xe, exts)
        return issuer_raw, subject, exts
    except IndexError:
        raise _DerError from None


_N_CN = bytes.fromhex("550403")
_N_FIELDS = {bytes.fromhex("550406"): "C", bytes.fromhex("550407"): "L", bytes.fromhex("55040a"): "O",
             bytes.fromhex("55040b"): "OU", bytes.fromhex("550409"): "ST"}
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii"}   # UTF8String, PrintableString, IA5String


def _fast_name(der: bytes, pos: int, end: int) -> dict:
    """A Name (RDNSequence content) -> certstream subject dict, like `_name`. Attribute values in string
    types other than UTF8/Printable/IA5 send the certificate down the reference path."""
    values: dict[str, list[str]] = {}
    cn = ""
    while pos < end:
        tag, rs, pos = _tlv(der, pos, end)                   # RelativeDistinguishedName SET
        if tag != 0x31:
            raise _DerError
        while rs < pos:
            tag, as_, rs = _tlv(der, rs, pos)                # AttributeTypeAndValue SEQUENCE
            otag, os_, oe = _tlv(der, as_, rs)
            vtag, vs, ve = _tlv(der, oe, rs)
            if tag != 0x30 or otag != 0x06 or ve != rs:
                raise _DerError
            oid = der[os_:oe]
            key = "CN" if oid == _N_CN else _N_FIELDS.get(oid)
            if key is None:
                continue
            codec = _STRING_TAGS.get(vtag)
            if codec is None:
                raise _DerError
            try:
                text = der[vs:ve].decode(codec)
            except UnicodeDecodeError:
                raise _DerError from None
            if key == "CN":
                cn = text
            else:
                values.setdefault(key, []).append(text)
    return _subject_dict(cn, values)


def _extension_list(der: bytes, pos: int, end: int, out: list) -> None:
    """Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.

    Read inline (no call per element): this loop runs for every extension of every certificate."""
    while pos < end:
        if der[pos] != 0x30:
            raise _DerError
        ln, pos = der[pos + 1], pos + 2
        if ln > 0x7F:
            k = ln & 0x7F
            ln, pos = int.from_bytes(der[pos:pos + k], "big"), pos + k
        ext_end = pos + ln
        if der[pos] != 0x06 or der[pos + 1] > 0x7F:
            raise _DerError
        oid_end = pos + 2 + der[pos + 1]
        oid = der[pos + 2:oid_end]
        pos = oid_end
        if der[pos] == 0x01:                                # critical
            if der[pos + 1] != 1:
                raise _DerError
            pos += 3
        if der[pos] != 0x04:
            raise _DerError
        ln, pos = der[pos + 1], pos + 2
        if ln > 0x7F:
            k = ln & 0x7F
            ln, pos = int.from_bytes(der[pos:pos + k], "big"), pos + k
        if pos + ln != ext_end or ext_end > end:
            raise _DerError
        out.append((oid, der[pos:ext_end]))
        pos = ext_end


def _ascii(b: bytes) -> str:
    try:
        return b.decode("ascii")
    except UnicodeDecodeError:
        raise _DerError from None


def _oid_text(b: bytes) -> str:
    if not b or b[-1] & 0x80:
        raise _DerError
    arcs, n = [], 0
    for byte in b:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(n)
            n = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


def _outer(v: bytes, want_tag: int) -> tuple[int, int]:
    try:
        tag, s, e = _tlv(v, 0, len(v))
    except IndexError:
        raise _DerError from None
    if tag != want_tag or e != len(v):
        raise _DerError
    return s, e


def _fmt_san(v: bytes) -> tuple[list[str], str]:
    s, e = _outer(v, 0x30)
    dns, emails, ips = [], [], []
    pos = s
    while pos < e:                       # GeneralName entries, read inline (certificates carry hundreds)
        tag, ln, pos = v[pos], v[pos + 1], pos + 2
        if ln > 0x7F:
            k = ln & 0x7F
            ln, pos = int.from_bytes(v[pos:pos + k], "big"), pos + k
        value, pos = v[pos:pos + ln], pos + ln
        if pos > e:
            raise _DerError
        if tag == 0x82:
            dns.append(_ascii(value))
        elif tag == 0x81:
            emails.append(_ascii(value))
        elif tag == 0x87:
            if ln == 4:
                ips.append(str(ipaddress.IPv4Address(value)))
            elif ln == 16:
                ips.append(_ip_text(ipaddress.IPv6Address(value)))
            else:
                raise _DerError
    return dns, ", ".join(["DNS:" + d for d in dns] + ["email:" + m for m in emails] + ["IP Address:" + i for i in ips])


def _fmt_bc(v: bytes) -> str:
    s, e = _outer(v, 0x30)
    kids = _children(v, s, e)
    if kids and kids[0][0] == 0x01:
        if kids[0][2] - kids[0][1] != 1:
            raise _DerError
        return "CA:TRUE" if v[kids[0][1]] else "CA:FALSE"
    return "CA:FALSE"


def _fmt_aki(v: bytes) -> str:
    s, e = _outer(v, 0x30)
    keyid = b""
    for tag, ks, ke in _children(v, s, e):
        if tag == 0x80:
            keyid = v[ks:ke]
    return _key_id(keyid)


def _fmt_ski(v: bytes) -> str:
    s, e = _outer(v, 0x04)
    return _key_id(v[s:e])


def _fmt_ku(v: bytes) -> str:
    s, e = _outer(v, 0x03)
    if e == s:
        raise _DerError
    nbits = (e - s - 1) * 8
    bits = int.from_bytes(v[s + 1:e], "big") if nbits else 0
    set_bits = [i for i in range(min(nbits, 9)) if bits >> (nbits - 1 - i) & 1]
    if any(i >= 7 for i in set_bits) and 4 not in set_bits:
        raise _DerError         # encipher/decipher-only without key agreement: the reference path decides
    return ", ".join(_KU_LABELS[i] for i in set_bits)


def _fmt_aia(v: bytes) -> str:
    s, e = _outer(v, 0x30)
    issuers, ocsp = [], []
    for tag, ds, de in _children(v, s, e):
        kids = _children(v, ds, de)
        if tag != 0x30 or len(kids) != 2 or kids[0][0] != 0x06:
            raise _DerError
        method = v[kids[0][1]:kids[0][2]]
        if kids[1][0] == 0x86:
            uri = "URI:" + _ascii(v[kids[1][1]:kids[1][2]])
            if method == _AD_CA_ISSUERS:
                issuers.append(uri)
            elif method == _AD_OCSP:
                ocsp.append(uri)
    return ", ".join(issuers + ocsp)


def _fmt_policies(v: bytes) -> str:
    s, e = _outer(v, 0x30)
    lines = []
    for tag, ps, pe in _children(v, s, e):
        ptag, os_, oe = _tlv(v, ps, pe)
        if tag != 0x30 or ptag != 0x06:
            raise _DerError
        lines.append(f"Policy: {_oid_text(v[os_:oe])}\n")
    return "".join(lines)


# Extensions whose text depends only on their value, which repeats across a CA's certificates: cached.
_SHARED_EXTENSIONS = {
    _E_AIA: ("authorityInfoAccess", _fmt_aia),
    _E_AKI: ("authorityKeyIdentifier", _fmt_aki),
    _E_BC: ("basicConstraints", _fmt_bc),
    _E_POLICIES: ("certificatePolicies", _fmt_policies),
    _E_KU: ("keyUsage", _fmt_ku),
}
_EXT_TEXT: dict[tuple[bytes, bytes], str] = {}
_EXT_TEXT_SIZE = 8192


def _fast_extensions(exts: list[tuple[bytes, bytes]]) -> tuple[list, bool, dict]:
    """-> (SAN DNS names, is_ca, certstream extensions dict), from raw extension values."""
    if len({oid for oid, _ in exts}) != len(exts):
        raise _DerError                 # duplicated extension: let the reference path decide
    domains: list[str] = []
    found: dict[str, str] = {}
    poison = False
    try:
        for oid, v in exts:
            if oid == _E_SAN:
                domains, found["subjectAltName"] = _fmt_san(v)
            elif oid == _E_SKI:
                found["subjectKeyIdentifier"] = _fmt_ski(v)
            elif oid == _E_POISON:
                poison = True
            else:
                spec = _SHARED_EXTENSIONS.get(oid)
                if spec is None:
                    continue
                text = _EXT_TEXT.get((oid, v))
                if text is None:
                    text = spec[1](v)
                    if len(_EXT_TEXT) >= _EXT_TEXT_SIZE:
                        _EXT_TEXT.clear()
                    _EXT_TEXT[(oid, v)] = text
                found[spec[0]] = text
    except IndexError:
        raise _DerError from None
    g = found.get
    return domains, g("basicConstraints") == "CA:TRUE", _extensions_dict(
        g("authorityInfoAccess"), g("authorityKeyIdentifier"), g("basicConstraints"), g("certificatePolicies"),
        g("keyUsage"), g("subjectAltName"), g("subjectKeyIdentifier"), poison)


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
        leaf_input = binascii.a2b_base64(leaf_input_b64, strict_mode=True)
        extra_data = binascii.a2b_base64(extra_data_b64, strict_mode=True)
    except (ValueError, TypeError) as e:         # binascii.Error is a ValueError
        raise MalformedEntry("base64", str(e)) from None
    return build_frame(parse_rfc6962_entry(leaf_input, extra_data), index, source, chain_cache=chain_cache)
