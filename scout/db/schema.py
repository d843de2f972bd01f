"""The tables (one schema for SQLite and PostgreSQL) and the column types they share.

Times are UTC: `timestamptz` on PostgreSQL; on SQLite, naive UTC text that sorts as it compares. An
address is kept twice: as text to show, and as bytes (its version, then the address) so that a CIDR
is a range scan on a plain B-tree index on both engines.
"""
from __future__ import annotations

import ipaddress
from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table,
                        Text, TypeDecorator)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, whatever the engine keeps."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(timezone.utc) if value.tzinfo else value
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value.replace(tzinfo=timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def ip_key(address: str) -> bytes:
    """Bytes that order addresses: the IP version, then the address (an IPv4 network never covers an
    IPv6 address, nor ::ffff:0:0/96 an IPv4 one)."""
    ip = ipaddress.ip_address(address)
    return bytes([ip.version]) + ip.packed


def network_range(network) -> tuple[bytes, bytes]:
    """The first and last ip_key of a network."""
    return ip_key(str(network.network_address)), ip_key(str(network.broadcast_address))


metadata = MetaData()
DOCUMENT_JSON = JSON().with_variant(JSONB(), "postgresql")

domains = Table(
    "domains", metadata,
    Column("domain", String, primary_key=True),
    Column("root_domain", String, nullable=False),
    Column("registered_domain", String),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("seen_count", Integer, nullable=False),
    Column("score", Integer),
    Column("registrar", Text),
    Column("whois_created", UTCDateTime),
    Column("whois_expires", UTCDateTime),
    Column("whois_status", String),
    # first_seen - whois_created in seconds: `--registered-within` as an indexed range
    Column("registration_age", BigInteger),
    Column("cert_issuer", Text),
    Column("not_before", UTCDateTime),
    Index("ix_domains_first_seen", "first_seen"),
    Index("ix_domains_last_seen", "last_seen"),
    # equality filters with the order of the results: the first 50 come straight from the index
    Index("ix_domains_root_domain", "root_domain", "first_seen"),
    Index("ix_domains_registered_domain", "registered_domain", "first_seen"),
    Index("ix_domains_whois_status", "whois_status", "first_seen"),
    Index("ix_domains_score", "score"),
    Index("ix_domains_registration_age", "registration_age"),
    # `--registrar`: the names that contain the substring (from `registrars`), then these rows newest first
    Index("ix_domains_registrar", "registrar", "first_seen"),
)

# Every registrar name in `domains` (written with its rows, never deleted: a name without rows matches
# nothing). A substring is matched against these few thousand names, not against a million rows.
registrars = Table(
    "registrars", metadata,
    Column("name", Text, primary_key=True),
)

# The whole document, in a table of its own: the rows that filters scan and sort stay narrow (a
# document is 1-10 KB), and a page of results reads 50 documents, not every candidate's.
documents = Table(
    "documents", metadata,
    Column("domain", String, primary_key=True),
    Column("document", DOCUMENT_JSON, nullable=False),
)

addresses = Table(
    "addresses", metadata,
    Column("domain", String, primary_key=True),
    Column("ip", String, primary_key=True),
    Column("ip_key", LargeBinary(17), nullable=False),
    Column("asn", BigInteger),
    Column("network_cidr", String),
    Column("country", String),
    # the domain's first_seen (migration 4; kept equal by the writes): an address range orders its
    # matches in this narrow index and reads only a page's worth of `domains` rows
    Column("first_seen", UTCDateTime),
    # with the domain: the lookups by address, range or ASN read the index alone
    Index("ix_addresses_ip_first_seen", "ip_key", "first_seen", "domain"),
    Index("ix_addresses_asn", "asn", "domain"),
)

nameservers = Table(
    "nameservers", metadata,
    Column("domain", String, primary_key=True),
    Column("ns", String, primary_key=True),
    Index("ix_nameservers_ns", "ns", "domain"),
)

schema_version = Table(
    "scout_schema", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied", UTCDateTime, nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
