"""Certificate de-duplication (issue 18): producer certificates/s on a full-stream workload with realistic
duplication, with CT_DEDUP_KEYS=0 (before) and the default (after), in the same run on the same frames.

Workload (`issuance_frames`): real certificates from `workload.Issuer`, one precertificate and one final
certificate per issuance (same TBS; poison vs SCT list), as full-stream frames (leaf built by scout's CT
decoder, chain from the fixture); each precertificate appears in 2-3 logs and each certificate in 1-2
logs, the copies spread over the next few hundred frames: ~4 frames per issuance, as CT shows them.

Figures: frames (certificates) per CPU-second of the producer thread, before and after (alternating
rounds, best of each), and the ratio;
the cost of one key (asn1crypto parser walk) against asn1crypto's full Certificate model (the first
version) and cryptography's DER load; bytes per remembered key.
"""
from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import random
import time
import tracemalloc

from bench.producer_bench import run_producer
from bench.workload import Issuer, cert_names, fixture_certificates
from scout.config import Settings
from scout.producer.certdedup import SeenCertificates, tbs_key
from scout.sources.ct.decode import leaf_cert_fields
from scout.store import MemoryStore, RedisStore

LOGS = ("Argon 2026h2", "Xenon 2026h2", "Oak 2026h2", "Sycamore 2026h2", "Willow 2026h2", "Elephant 2026h2")


def issuance_frames(n_issuances: int, seed: int = 23) -> tuple[list[str], list[bytes]]:
    """(full-stream frames in arrival order, the DERs of every certificate made)."""
    rng = random.Random(seed)
    issuer, template = Issuer(), fixture_certificates()[0]
    timeline: list[tuple[float, str]] = []
    ders = []
    for i in range(n_issuances):
        pre, cert = issuer.issue(list(dict.fromkeys(n.rstrip(".").lower() for n in cert_names(rng, 3_000_000 + i)
                                                    if " " not in n and not n[0].isdigit())) or [f"x{i}.example"])
        ders += [pre, cert]
        for der, kind, copies in ((pre, "PrecertLogEntry", rng.randint(2, 3)), (cert, "X509LogEntry", rng.randint(1, 2))):
            leaf = leaf_cert_fields(der)
            for log_name in rng.sample(LOGS, copies):
                data = dict(template["data"], leaf_cert=leaf, update_type=kind, cert_index=i,
                            source={"name": log_name, "url": "https://ct.example/" + log_name.split()[0].lower()})
                at = i + rng.uniform(0, 300) + (rng.uniform(5, 60) if kind == "X509LogEntry" else 0)
                timeline.append((at, json.dumps({"message_type": "certificate_update", "data": data},
                                                separators=(",", ":"))))
    timeline.sort(key=lambda t: t[0])
    return [text for _, text in timeline], ders


def _per_cert_us(fn, ders: list[bytes], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        t = time.thread_time()
        for d in ders:
            fn(d)
        best = min(best, time.thread_time() - t)
    return best / len(ders) * 1e6


def _asn1crypto_model_key(der: bytes) -> bytes:
    """The first version: asn1crypto's Certificate model, drop the two extensions, dump."""
    from asn1crypto import x509 as ax

    tbs = ax.Certificate.load(der)["tbs_certificate"]
    exts = tbs["extensions"]
    keep = [e for e in exts if e["extn_id"].dotted not in ("1.3.6.1.4.1.11129.2.4.3", "1.3.6.1.4.1.11129.2.4.2")]
    if len(keep) != len(exts):
        tbs["extensions"] = ax.Extensions(keep)
    return hashlib.sha256(tbs.dump()).digest()


def _bytes_per_key(n: int = 200_000) -> float:
    gc.collect()
    tracemalloc.start()
    seen = SeenCertificates(2 * n)
    for i in range(n):
        seen.seen(hashlib.sha256(i.to_bytes(8, "big")).digest())
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size / n


def bench_ct_dedup(n_issuances: int, redis_url: str | None = None, rounds: int = 3) -> dict:
    frames, ders = issuance_frames(n_issuances)
    base = dataclasses.replace(Settings(), cache_ttl=3600.0)
    out: dict = {"ct_dedup_issuances": n_issuances, "ct_dedup_frames": len(frames)}
    # ENRICH=watchlist: the producer scores every name it has not seen in its current chunk (the costliest
    # per-name step), so each copy of a certificate is scored again unless it is dropped first.
    variants = [("ct_dedup", MemoryStore, "all"), ("ct_dedup_watchlist", MemoryStore, "watchlist")]
    if redis_url:
        variants.append(("ct_dedup_redis", lambda: RedisStore(redis_url), "all"))
    for pre, make_store, enrich in variants:
        runs: dict = {"before": [], "after": []}
        for _ in range(rounds):     # alternating, best of each: other tenants move single runs by 20 %
            for name, keys in (("before", 0), ("after", base.ct_dedup_keys)):
                store = make_store()
                if pre == "ct_dedup_redis":
                    store.r.flushdb()
                runs[name].append(run_producer(frames, store, settings=dataclasses.replace(
                    base, ct_dedup_keys=keys, enrich=enrich)))
        b, a = (max(runs[k], key=lambda r: r["frames_per_s"]) for k in ("before", "after"))
        out.update({f"{pre}_before_certs_per_s": round(b["frames_per_s"]),
                    f"{pre}_after_certs_per_s": round(a["frames_per_s"]),
                    f"{pre}_ratio": round(a["frames_per_s"] / b["frames_per_s"], 3),
                    f"{pre}_unique_domains": [b["unique"], a["unique"]],
                    f"{pre}_certs_duplicate": a["certs_duplicate"],
                    f"{pre}_rounds": {k: [round(r["frames_per_s"]) for r in v] for k, v in runs.items()}})
        if pre == "ct_dedup_redis":
            out.update({"ct_dedup_redis_before_certs_per_wall_s": round(b["frames_per_wall_s"]),
                        "ct_dedup_redis_after_certs_per_wall_s": round(a["frames_per_wall_s"])})
    sample = ders[:2000]
    out["ct_dedup_key_us"] = round(_per_cert_us(tbs_key, sample), 1)
    out["ct_dedup_key_asn1crypto_model_us"] = round(_per_cert_us(_asn1crypto_model_key, sample[:500], 1), 1)
    from cryptography import x509
    out["ct_dedup_load_der_us"] = round(_per_cert_us(x509.load_der_x509_certificate, sample), 1)
    out["ct_dedup_bytes_per_key"] = round(_bytes_per_key())
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(bench_ct_dedup(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
