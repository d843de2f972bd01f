"""What the producer reads in tests, and running it: certstream recordings of `dns_entries` frames and
`scout produce` over one (in a subprocess, as an operator runs it)."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_scout


def dns_entries_file(path: Path, batches: list[list[str]]) -> Path:
    """A recording of certstream `dns_entries` frames, one frame per list of names."""
    with open(path, "w") as f:
        for names in batches:
            f.write(json.dumps({"message_type": "dns_entries", "data": names}) + "\n")
    return path


def recording(path: Path, names: list[str], per_frame: int = 5) -> Path:
    """A /domains-only recording carrying `names`, `per_frame` to a frame."""
    return dns_entries_file(path, [names[i:i + per_frame] for i in range(0, len(names), per_frame)])


def produce(env: dict, source: Path, *options: str, timeout: float = 120) -> dict:
    """`scout produce [OPTIONS] --source FILE` to its end; -> the counters it prints last."""
    r = run_scout(["produce", *options, "--source", str(source)], env, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
