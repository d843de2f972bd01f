"""Certificate-level de-duplication: one issuance is seen at least four times (its precertificate and its
final certificate, each in two or more logs); the producer handles it once.

The key is what certspotter uses (its issue #76): SHA-256 of the TBSCertificate with the CT poison
extension (precertificates) and the SCT-list extension (final certificates) removed, then re-encoded.
The two certificates of one issuance are signed separately, so their fingerprints differ, but what the
CA certified is the same. The DER is walked in place (scout.sources.ct.der, the CT decoder's walk) and
the shortened TBS encoded with asn1crypto's encoder: ~10 µs a certificate, against ~340 µs through
asn1crypto's Certificate model, which the tests use as the reference (bench/RESULTS.md).

Frames without DER (certstream's lite stream) fall back to issuer + serial number + names: RFC 6962
requires the precertificate and the certificate to share serial and issuer.

The same DER seen again (a precertificate in its second and third log) is recognised by the frame's
`sha256` fingerprint before any key is computed, so each distinct DER is keyed once.

Memory is bounded: the last `max_keys` keys (TBS keys and fingerprints, ~3 per issuance) are
remembered, in two generations of max_keys/2 (the older generation is dropped when the newer fills):
8-byte keys, about 80 bytes each in CPython sets, so the default 1,000,000 keys cost ~80 MB at most and
cover an hour or more of the full stream (precertificate and certificate are mostly logged minutes apart).
"""
from __future__ import annotations

import binascii
import hashlib

from asn1crypto import parser

from scout.sources.ct.der import DerError
from scout.sources.ct.der import element as der_element

# The encoded OIDs (tag, length, value) of the two extensions CT adds: an Extension is a SEQUENCE whose
# contents start with its OID, so after the SEQUENCE's 2-4 header bytes these 12 bytes name it.
_POISON = bytes.fromhex("060a2b06010401d679020403")      # 1.3.6.1.4.1.11129.2.4.3
_SCT_LIST = bytes.fromhex("060a2b06010401d679020402")    # 1.3.6.1.4.1.11129.2.4.2
_SEQUENCE = 16


class NotACertificate(ValueError):
    pass


def _is_ct_extension(ext: bytes) -> bool:
    head = ext[2:16]     # a comparison instead of parsing each extension's OID
    return _POISON in head or _SCT_LIST in head


def tbs_key(der: bytes) -> bytes:
    """certspotter's identity of a (pre)certificate: SHA-256 of its TBSCertificate without the poison and
    SCT-list extensions. Raises NotACertificate."""
    try:
        _, s, e = der_element(der, 0, len(der))           # Certificate
        _, ts, te = der_element(der, s, e)                 # TBSCertificate
        pos = ts
        while pos < te:
            tag, cs, ce = der_element(der, pos, te)
            if tag == 0xA3:                                # [3] EXPLICIT Extensions: the last field
                _, xs, xe = der_element(der, cs, ce)
                kept, p = [], xs
                while p < xe:
                    q = der_element(der, p, xe)[2]
                    if not _is_ct_extension(der[p:q]):
                        kept.append(der[p:q])
                    p = q
                exts = parser.emit(2, 1, 3, parser.emit(0, 1, _SEQUENCE, b"".join(kept)))
                return hashlib.sha256(parser.emit(0, 1, _SEQUENCE, der[ts:pos] + exts + der[ce:te])).digest()
            pos = ce
        return hashlib.sha256(der[s:te]).digest()         # no extensions: the TBS as it is
    except (DerError, IndexError, ValueError) as e:
        raise NotACertificate(str(e) or type(e).__name__) from None


def frame_key(leaf: dict) -> bytes | None:
    """The de-duplication key of a frame's leaf_cert: from its DER when present (and parsable), else from
    issuer, serial and names; None when the frame has neither."""
    der_b64 = leaf.get("as_der")
    if isinstance(der_b64, str) and der_b64:
        try:
            return tbs_key(binascii.a2b_base64(der_b64))
        except (NotACertificate, binascii.Error):
            pass
    issuer = leaf.get("issuer")
    issuer = issuer.get("aggregated") if isinstance(issuer, dict) else None
    serial = leaf.get("serial_number")
    if not isinstance(issuer, str) or not isinstance(serial, str) or not serial:
        return None
    names = leaf.get("all_domains") if isinstance(leaf.get("all_domains"), list) else []
    text = "\x00".join([issuer, serial.upper().lstrip("0")] + sorted(n for n in names if isinstance(n, str)))
    return hashlib.sha256(b"isn\x00" + text.encode("utf-8", "surrogatepass")).digest()


def _fingerprint(value) -> int | None:
    """The first 8 bytes of a frame's `sha256` ("E0:7C:F6:...", the DER's fingerprint) as an int."""
    if not isinstance(value, str) or len(value) != 95:
        return None
    try:
        return int(value[:23].replace(":", ""), 16)
    except ValueError:
        return None


class SeenCertificates:
    """Keys of the last `max_keys` certificates (two generations; see the module docstring)."""

    def __init__(self, max_keys: int) -> None:
        self.half = max(1, max_keys // 2)
        self.new: set[int] = set()
        self.old: set[int] = set()

    def seen(self, key: bytes) -> bool:
        """True if `key` was seen within the window; remembers it either way."""
        return self._seen(int.from_bytes(key[:8], "big"))   # 64 bits: ~3e-8 chance of a collision in 1M

    def _seen(self, k: int) -> bool:
        if k in self.new or k in self.old:
            return True
        if len(self.new) >= self.half:
            self.old, self.new = self.new, set()
        self.new.add(k)
        return False

    def duplicate(self, leaf: dict) -> bool:
        """Is this frame's certificate another copy of one seen in the window? The same DER again (the
        same precertificate or certificate in another log) is known by its fingerprint, without computing
        the key; the fingerprint is remembered too, so each DER is keyed once."""
        fp = _fingerprint(leaf.get("sha256"))
        if fp is not None and (fp in self.new or fp in self.old):
            return True
        key = frame_key(leaf)
        if key is None:
            return False
        dup = self.seen(key)
        if fp is not None:
            self._seen(fp)
        return dup

    def __len__(self) -> int:
        return len(self.new) + len(self.old)
