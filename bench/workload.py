"""Workloads the benchmarks build for themselves: deterministic, nothing downloaded.

- `domains_only_frames(n_domains)`: certstream `/domains-only` frames (`dns_entries`) carrying at least
  `n_domains` names the way CT shows them: wildcards, `www.`, mixed case, trailing dots, the same
  certificate twice (precertificate then certificate), an occasional IP address or junk name.
- `full_frames(n_certs)`: `/full-stream` frames made from the real-looking fixture frames in
  tests/data/certstream-sample.jsonl with rewritten all_domains, cert_index, hashes and seen.
- `e2e_zone(n_roots, subs)`: the names the end-to-end run sends through the pipeline, and the DNS zones
  nsd serves for them (A/AAAA/MX/TXT/CAA records, some NXDOMAIN), with every A record inside a few
  public-looking /24 networks, so the WHOIS cache can be pre-filled per network.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "certstream-sample.jsonl"

WORDS = ("shop", "cloud", "login", "secure", "app", "mail", "data", "my", "portal", "pay", "bank", "dev",
         "api", "cdn", "blog", "news", "home", "smart", "green", "fast", "net", "web", "store", "media")
TLDS = ("com", "net", "org", "io", "de", "co.uk", "fr", "xyz", "online", "com.br")
SUBS = ("www", "api", "mail", "dev", "staging", "cdn", "app", "vpn", "portal", "m")


def _root(rng: random.Random, i: int) -> str:
    return f"{rng.choice(WORDS)}{rng.choice(WORDS)}-{i}.{rng.choice(TLDS)}"


def cert_names(rng: random.Random, i: int) -> list[str]:
    """all_domains of one certificate, as CT shows them (not lower-cased, not de-duplicated)."""
    root = _root(rng, i)
    k = rng.random()
    if k < 0.35:
        names = [root, "www." + root]
    elif k < 0.55:
        names = ["*." + root, root]
    elif k < 0.75:
        names = [root] + [f"{s}.{root}" for s in rng.sample(SUBS, rng.randint(1, 4))]
    elif k < 0.85:
        names = [f"{rng.choice(SUBS)}-{i}.{rng.choice(SUBS)}.{root}"]
    elif k < 0.93:
        names = [root.upper(), "WWW." + root.capitalize(), root + "."]
    else:
        names = [root, f"{rng.choice(SUBS)}.{root}", "*." + f"{rng.choice(SUBS)}.{root}"]
    if rng.random() < 0.01:
        names.append(f"10.{i % 250}.{rng.randint(0, 250)}.{rng.randint(1, 250)}")
    if rng.random() < 0.005:
        names.append("bad name!.example")
    return names


def iter_domains_only_frames(n_domains: int, seed: int = 7):
    """>= n_domains raw names in dns_entries frames; each certificate appears twice (precert, cert)
    with a few frames in between, as in the real stream. A generator: nothing is held in memory."""
    rng = random.Random(seed)
    pending: list[tuple[str, int]] = []
    total = i = 0
    while total < n_domains:
        names = cert_names(rng, i)
        i += 1
        text = json.dumps({"message_type": "dns_entries", "data": names}, separators=(",", ":"))
        yield text
        total += len(names)
        pending.append((text, len(names)))
        if len(pending) >= 8:  # the final certificate turns up a little later
            again, k = pending.pop(0)
            yield again
            total += k
    for again, _ in pending:
        yield again


def domains_only_frames(n_domains: int, seed: int = 7) -> list[str]:
    return list(iter_domains_only_frames(n_domains, seed))


def count_names(frames: list[str]) -> int:
    n = 0
    for f in frames:
        d = json.loads(f)
        if d.get("message_type") == "dns_entries":
            n += len(d["data"])
        elif d.get("message_type") == "certificate_update":
            n += len(d["data"]["leaf_cert"]["all_domains"])
    return n


def fixture_certificates() -> list[dict]:
    out = []
    for line in FIXTURE.read_text().splitlines():
        frame = json.loads(line)
        if frame.get("message_type") == "certificate_update" and frame["data"]["leaf_cert"].get("all_domains"):
            out.append(frame)
    return out


def full_frames(n_certs: int, seed: int = 11) -> list[str]:
    """n_certs full-stream frames (chain, DER, extensions: the real size) with fresh names and ids."""
    rng = random.Random(seed)
    templates = fixture_certificates()
    frames = []
    for i in range(n_certs):
        frame = copy.deepcopy(templates[i % len(templates)])
        data = frame["data"]
        leaf = data["leaf_cert"]
        names = cert_names(rng, 1_000_000 + i)
        leaf["all_domains"] = names
        cn = names[0]
        if isinstance(leaf.get("subject"), dict):
            leaf["subject"]["CN"] = cn
            leaf["subject"]["aggregated"] = "/CN=" + cn
        digest = hashlib.sha256(f"bench-{seed}-{i}".encode()).hexdigest()
        leaf["sha256"] = ":".join(digest[k:k + 2].upper() for k in range(0, 64, 2))
        leaf["fingerprint"] = leaf["sha256"][:59]
        data["cert_index"] = 2_000_000_000 + i
        data["seen"] = 1_790_000_000.0 + i / 1000
        frames.append(json.dumps(frame, separators=(",", ":")))
    return frames


# ------------------------------------------------------------------ end-to-end zones

E2E_TLDS = ("com", "net", "org")
E2E_NETS = ("23.{k}.10", "45.{k}.20", "64.{k}.30", "81.{k}.40", "93.{k}.50", "104.{k}.60", "151.{k}.70",
            "185.{k}.80")


def e2e_networks(n_nets: int = 16) -> list[str]:
    """Public-looking /24 networks (as 'a.b.c') that every A record of the end-to-end zones falls into."""
    out = []
    for k in range(n_nets):
        out.append(E2E_NETS[k % len(E2E_NETS)].format(k=10 + k // len(E2E_NETS)))
    return out


def e2e_domains(n: int, prefix: str = "b", subs_per_root: int = 4) -> tuple[list[str], dict[str, list[str]]]:
    """(domains in enqueue order, zone -> records) for n domains: roots with subdomains, 1 in 10
    names without any record (NXDOMAIN). Records relative to each TLD zone."""
    rng = random.Random(n * 31 + len(prefix))
    nets = e2e_networks()
    zones: dict[str, list[str]] = {t + ".": [] for t in E2E_TLDS}
    domains: list[str] = []
    r = 0
    while len(domains) < n:
        tld = E2E_TLDS[r % len(E2E_TLDS)]
        label = f"{prefix}{rng.choice(WORDS)}{r}"
        root = f"{label}.{tld}"
        net = nets[r % len(nets)]
        rec = zones[tld + "."]
        rec.append(f"{label} 300 IN A {net}.{1 + r % 250}")
        if r % 3 == 0:
            rec.append(f"{label} 300 IN AAAA 2a00:{1000 + r % 4000:x}::{r % 65000:x}")
        rec.append(f"{label} 300 IN MX 10 mail.{label}")
        rec.append(f'{label} 300 IN TXT "v=spf1 include:_spf.{label}.{tld} -all"')
        if r % 5 == 0:
            rec.append(f'{label} 300 IN CAA 0 issue "letsencrypt.org"')
        domains.append(root)
        for s in SUBS[1:1 + subs_per_root]:  # no www.: the producer strips it
            if len(domains) >= n:
                break
            name = f"{s}.{root}"
            domains.append(name)
            if rng.random() < 0.1:
                continue  # NXDOMAIN
            if s == "api" and r % 2:
                rec.append(f"{s}.{label} 300 IN CNAME {label}.{tld}.")
            else:
                rec.append(f"{s}.{label} 300 IN A {net}.{1 + (r * 7 + len(s)) % 250}")
        r += 1
    return domains, zones


def zone_texts(zones: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for zone, records in zones.items():
        z = zone.rstrip(".")
        head = [f"@ 3600 IN SOA ns1.bench-{z}. hostmaster.bench-{z}. 2026120101 7200 3600 1209600 300",
                f"@ 3600 IN NS ns1.bench-{z}."]
        out[zone] = "\n".join(head + records) + "\n"
    return out


def e2e_frames(domains: list[str], per_frame: int = 2) -> list[str]:
    """dns_entries frames carrying `domains` (each exactly once) for the end-to-end runs."""
    return [json.dumps({"message_type": "dns_entries", "data": domains[i:i + per_frame]}, separators=(",", ":"))
            for i in range(0, len(domains), per_frame)]


# ------------------------------------------------------------------ issuances (precertificate + certificate)

class Issuer:
    """A throwaway CA issuing, per call, the two certificates of one issuance the way CAs log them: a
    precertificate (CT poison extension) and the final certificate (the same TBS with an SCT list in
    the poison's place), signed separately. Deterministic names; keys are generated once."""

    def __init__(self, name: str = "Scout Bench CA") -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._NameOID = x509, hashes, NameOID
        self._der = serialization.Encoding.DER
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                             x509.NameAttribute(NameOID.COMMON_NAME, name + " R1")])
        self.now = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
        self.ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(self.key.public_key()).serial_number(1)
                   .not_valid_before(self.now).not_valid_after(self.now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(self.key, hashes.SHA256()))
        self.ca_der = self.ca.public_bytes(self._der)
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.serial = 0x5C0C7000

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        """(precertificate DER, certificate DER) of one issuance for `names` (the first is the CN)."""
        import datetime

        x509 = self._x509
        self.serial += 1
        sct_oid = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

        def build(ct_ext, critical):
            return (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(self._NameOID.COMMON_NAME, names[0])]))
                    .issuer_name(self.ca.subject).public_key(self.leaf_key.public_key())
                    .serial_number(self.serial).not_valid_before(self.now)
                    .not_valid_after(self.now + datetime.timedelta(days=90))
                    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                    .add_extension(ct_ext, critical=critical)
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                    .sign(self.key, self._hashes.SHA256()).public_bytes(self._der))

        return build(x509.PrecertPoison(), True), build(x509.UnrecognizedExtension(sct_oid, self._sct_list()), False)

    def _sct_list(self) -> bytes:
        """extnValue of an SCT list extension (RFC 6962 3.3) with one v1 SCT from a made-up log."""
        sig = b"\x30\x06\x02\x01\x01\x02\x01\x01"               # ECDSA-Sig-Value r=1, s=1 (never checked)
        sct = (b"\x00" + hashlib.sha256(b"bench log").digest() + (1_790_000_000_000 + self.serial).to_bytes(8, "big")
               + b"\x00\x00" + b"\x04\x03" + len(sig).to_bytes(2, "big") + sig)
        body = len(sct).to_bytes(2, "big") + sct
        tls = len(body).to_bytes(2, "big") + body
        return bytes([0x04, len(tls)]) + tls
