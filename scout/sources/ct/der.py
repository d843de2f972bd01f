"""The DER walk both the CT decoder's fast path (decode.py) and certificate de-duplication
(scout.producer.certdedup) use: element headers read in place, without copying or building objects.
No cryptography import here, so the producer can use it without loading the CT reader."""
from __future__ import annotations


class DerError(Exception):
    """Something the fast path does not handle; the reference path decides."""


def element(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at pos; it must end by `end`."""
    tag, ln = buf[pos], buf[pos + 1]     # IndexError past the end: callers treat it as DerError
    pos += 2
    if ln > 0x7F:
        n = ln & 0x7F
        if n == 0 or n > 3:
            raise DerError
        ln = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if (tag & 0x1F) == 0x1F or pos + ln > end:
        raise DerError
    return tag, pos, pos + ln
