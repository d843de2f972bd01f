"""Reading a real /metrics page (Prometheus text) in tests."""
from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int, host: str = "127.0.0.1") -> dict:
    """{(sample name, ((label, value), ...)): value} of http://host:port/metrics."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))


def total(samples: dict, name: str, **labels) -> float:
    """Sum of `name` over the samples whose labels include `labels`."""
    want = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def scrape_or_none(port: int):
    try:
        return scrape(port)
    except OSError:
        return None
