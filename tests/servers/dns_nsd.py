"""Run a real authoritative DNS server (NLnet Labs NSD) on loopback for tests.

    proc, port = start_nsd({"asn.cymru.com.": ZONE_TEXT}, tmp_path)
    ... ask 127.0.0.1:port over UDP or TCP ...
    stop_nsd(proc)

or as a context manager: `with nsd_server(zones, tmp_path) as port: ...`.

`start_nsd` writes nsd.conf and one zone file per zone into `tmpdir`, picks a port free for both UDP
and TCP, starts `nsd -d -c nsd.conf` in the foreground (its own process group), and returns only once
the server answers an SOA query for every zone, so a test never races its start. Response-rate limiting
is off (NSD throttles to 200 qps by default). On failure the process is killed and the log is in the
exception. Zone texts are standard master-file text; `$ORIGIN` is added when missing.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

NSD_PATHS = ("/usr/sbin/nsd", "/usr/local/sbin/nsd")


def find_nsd() -> str | None:
    for p in NSD_PATHS:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("nsd")


def _free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on `host` right now (NSD needs both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((host, port))
            except OSError:
                continue
            finally:
                u.close()
            return port
        finally:
            t.close()
    raise RuntimeError("no free port for nsd")


def _zone_file_name(zone: str) -> str:
    z = zone.rstrip(".") or "root"
    return z.replace("/", "_") + ".zone"


def write_config(zones: dict[str, str], tmpdir: str | os.PathLike, port: int, host: str = "127.0.0.1") -> Path:
    d = Path(tmpdir)
    d.mkdir(parents=True, exist_ok=True)
    lines = [
        "server:",
        f'    ip-address: {host}@{port}',
        f"    port: {port}",
        '    username: ""',
        '    chroot: ""',
        '    database: ""',
        f'    zonesdir: "{d}"',
        f'    zonelistfile: "{d / "zone.list"}"',
        f'    xfrdfile: "{d / "xfrd.state"}"',
        f'    xfrdir: "{d}"',
        f'    pidfile: "{d / "nsd.pid"}"',
        f'    logfile: "{d / "nsd.log"}"',
        "    server-count: 1",
        "    verbosity: 1",
        "    hide-version: yes",
        "    rrl-ratelimit: 0",
        "    rrl-whitelist-ratelimit: 0",
        "    minimal-responses: no",
        "",
        "remote-control:",
        "    control-enable: no",
        "",
    ]
    for zone, text in zones.items():
        name = zone if zone.endswith(".") else zone + "."
        fname = _zone_file_name(name)
        if "$ORIGIN" not in text:
            text = f"$ORIGIN {name}\n" + text
        (d / fname).write_text(text if text.endswith("\n") else text + "\n")
        lines += ["zone:", f"    name: {name}", f'    zonefile: "{d / fname}"', ""]
    conf = d / "nsd.conf"
    conf.write_text("\n".join(lines))
    return conf


def _answers(port: int, zone: str, host: str, timeout: float = 0.3) -> bool:
    q = dns.message.make_query(zone if zone.endswith(".") else zone + ".", "SOA")
    try:
        r = dns.query.udp(q, host, port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return False
    return r.rcode() == dns.rcode.NOERROR and len(r.answer) > 0


def start_nsd(zones: dict[str, str], tmpdir, *, host: str = "127.0.0.1", wait: float = 15.0,
              attempts: int = 3, port: int | None = None) -> tuple[subprocess.Popen, int]:
    """Start NSD serving `zones` (zone name -> zone text); returns (process, port) once it answers.
    With `port`, on that port (a restart: tried again while the previous instance still holds it)."""
    nsd = find_nsd()
    if not nsd:
        raise RuntimeError("nsd is not installed (Debian: apt-get install nsd)")
    fixed, last_log = port, ""
    for attempt in range(attempts if fixed is None else 10 * attempts):
        if fixed is not None and attempt:
            time.sleep(0.3)
        port = fixed or _free_port(host)
        workdir = Path(tmpdir) / f"nsd-{port}"
        conf = write_config(zones, workdir, port, host)
        # A zone error shows up here, before the server starts.
        check = shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf"
        if os.access(check, os.X_OK):
            cc = subprocess.run([check, str(conf)], capture_output=True, text=True, timeout=10)
            if cc.returncode != 0:
                raise RuntimeError(f"nsd-checkconf rejected {conf}: {cc.stdout}{cc.stderr}")
        log = open(workdir / "nsd.stderr", "wb")
        proc = subprocess.Popen([nsd, "-d", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        end = time.monotonic() + wait
        pending = list(zones)
        while time.monotonic() < end and proc.poll() is None:
            pending = [z for z in pending if not _answers(port, z, host)]
            if not pending:
                return proc, port
            time.sleep(0.05)
        stop_nsd(proc)
        last_log = _read_logs(workdir)
        if "address already in use" not in last_log.lower():
            break  # not a port race: retrying will not help
    raise RuntimeError(f"nsd did not start answering (log follows)\n{last_log}")


def _read_logs(workdir: Path) -> str:
    out = []
    for f in ("nsd.stderr", "nsd.log"):
        try:
            out.append((workdir / f).read_text(errors="replace")[-4000:])
        except OSError:
            pass
    return "\n".join(out)


def stop_nsd(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate NSD (and any child it forked: it runs in its own process group), then reap it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout=timeout)


@contextmanager
def nsd_server(zones: dict[str, str], tmpdir, **kw):
    proc, port = start_nsd(zones, tmpdir, **kw)
    try:
        yield port
    finally:
        stop_nsd(proc)
