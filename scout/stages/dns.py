"""DNS stage: A, AAAA, MX, TXT, CAA and SOA of each domain, asked concurrently with dnspython.

Pure of Celery: `resolve_batch(domains, settings)` returns one record dict per domain; `run_dns` is the
chain's step over items (scout.stages.chain). Each query has a
timeout and retries (rotating over DNS_SERVER's list), uses EDNS0 and retries over TCP when the answer
is truncated. The outcome of every type is kept (NOERROR, NODATA, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT);
NXDOMAIN is an answer. A domain is `transient` when no server answered at all (every type timed out or
was unreachable): only those are retried by the task.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import threading

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

TYPES = ("A", "AAAA", "MX", "TXT", "CAA", "SOA")
FIELD = {"A": "a_records", "AAAA": "aaaa_records", "MX": "mx_records", "TXT": "txt_records",
         "CAA": "caa_records"}
NO_ANSWER = ("TIMEOUT", "UNREACHABLE")
# Response codes a document may carry (the schema's list); any other code a server sends counts as FORMERR.
KNOWN_RCODES = frozenset(("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "NOTIMP", "FORMERR", "YXDOMAIN",
                          "NOTAUTH", "NOTZONE", "NXRRSET", "YXRRSET", "BADVERS"))
MAX_CNAME_HOPS = 16
_EDNS_PAYLOAD = 1232
_RDTYPES = {t: dns.rdatatype.from_text(t) for t in TYPES}
# One OPT record (EDNS0, 1232-byte payload) shared by every query: dnspython builds a new one per
# query with use_edns(), which was a third of the cost of making and rendering a query.
_OPT = dns.message.make_query(".", "A", use_edns=0, payload=_EDNS_PAYLOAD).opt


def make_query(qname: dns.name.Name, rdtype: str) -> dns.message.QueryMessage:
    q = dns.message.make_query(qname, _RDTYPES.get(rdtype) or rdtype)
    q.opt, q.request_payload = _OPT, _EDNS_PAYLOAD
    return q


def _fmt(rdtype: str, rdata) -> str:
    if rdtype == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}"
    if rdtype == "TXT":
        # SPF and DKIM read a record's character-strings concatenated with no separator.
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdtype == "SOA":
        return (f"{rdata.mname.to_text(omit_final_dot=True)} {rdata.rname.to_text(omit_final_dot=True)} "
                f"{rdata.serial} {rdata.refresh} {rdata.retry} {rdata.expire} {rdata.minimum}")
    return rdata.to_text()  # A, AAAA, CAA ('0 issue "letsencrypt.org"')


def follow_answer(response: dns.message.Message, qname: dns.name.Name, rdtype: str):
    """(records of rdtype at the end of the CNAME chain, the chain's targets as text)."""
    want = dns.rdatatype.from_text(rdtype)
    chain: list[str] = []
    name = qname
    seen = {name}
    for _ in range(MAX_CNAME_HOPS):
        rrset = next((r for r in response.answer if r.name == name and r.rdtype == want), None)
        if rrset is not None:
            return [_fmt(rdtype, rd) for rd in rrset], chain
        cname = next((r for r in response.answer if r.name == name and r.rdtype == dns.rdatatype.CNAME),
                     None)
        if cname is None or len(cname) == 0:
            break
        name = cname[0].target
        if name in seen:  # a CNAME loop: keep what we saw, no records
            chain.append(name.to_text(omit_final_dot=True))
            break
        seen.add(name)
        chain.append(name.to_text(omit_final_dot=True))
    return [], chain


def soa_from_authority(response: dns.message.Message) -> str:
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return _fmt("SOA", rrset[0])
    return ""


class _UdpMux(asyncio.DatagramProtocol):
    """Queries to one server multiplexed over one connected UDP socket, matched by ID and question.

    A socket (and an asyncio transport) per query costs more CPU than building and parsing the DNS
    messages; a few long-lived sockets per server halve the cost of a query. Answers with unknown IDs,
    a wrong question or unparsable bytes are ignored, as dnspython's `ignore_unexpected` does.
    """

    def __init__(self):
        self.transport = None
        self.pending: dict[int, tuple[asyncio.Future, dns.message.Message]] = {}
        self.unusable = 0  # datagrams that matched no query or did not parse

    def _ignore(self):
        self.unusable += 1

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        entry = self.pending.get(int.from_bytes(data[:2], "big")) if len(data) >= 12 else None
        if entry is None:
            return self._ignore()
        fut, q = entry
        try:
            response = dns.message.from_wire(data, ignore_trailing=True)
        except Exception:  # garbage: keep waiting for the real answer (or the timeout)
            return self._ignore()
        if not q.is_response(response):
            return self._ignore()
        if not fut.done():
            fut.set_result(response)

    def _fail_all(self, exc):
        for fut, _ in list(self.pending.values()):
            if not fut.done():
                fut.set_exception(exc)

    def error_received(self, exc):  # ICMP port unreachable: nobody listens there
        self._fail_all(exc)

    def connection_lost(self, exc):
        self.transport = None
        self._fail_all(exc or ConnectionResetError("socket closed"))


_MUX_SOCKETS = 8  # per server and event loop; spreads queries over several random source ports
_muxes: dict = {}


async def _mux_for(host: str, port: int) -> _UdpMux:
    loop = asyncio.get_running_loop()
    pool = _muxes.setdefault((id(loop), host, port), [])
    pool[:] = [m for m in pool if m.transport is not None]
    if len(pool) < _MUX_SOCKETS:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _, mux = await loop.create_datagram_endpoint(_UdpMux, remote_addr=(host, port), family=family)
        pool.append(mux)
        return mux
    pool.append(pool.pop(0))  # round robin
    return pool[-1]


async def _exchange(q: dns.message.Message, host: str, port: int, timeout: float) -> dns.message.Message:
    """One query: UDP through the multiplexer; over TCP when the answer is truncated."""
    mux = await _mux_for(host, port)
    while q.id in mux.pending:
        q.id = random.getrandbits(16)
    fut = asyncio.get_running_loop().create_future()
    mux.pending[q.id] = (fut, q)
    unusable_before = mux.unusable
    try:
        mux.transport.sendto(q.to_wire())
        response = await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        if mux.unusable > unusable_before:  # the server talks, but nothing it says is an answer
            raise dns.exception.FormError("only unusable answers") from None
        raise dns.exception.Timeout(timeout=timeout) from None
    finally:
        mux.pending.pop(q.id, None)
    if response.flags & dns.flags.TC:
        response = await dns.asyncquery.tcp(q, host, timeout=timeout, port=port, ignore_trailing=True)
    return response


def _forget_loop_sockets(loop) -> None:
    for key in [k for k in _muxes if k[0] == id(loop)]:
        for mux in _muxes.pop(key):
            if mux.transport is not None:
                mux.transport.close()


async def _query(qname: dns.name.Name, rdtype: str, servers, timeout: float, retries: int,
                 sem: asyncio.Semaphore):
    """-> (status, response or None)."""
    status = "TIMEOUT"
    for attempt in range(retries + 1):
        host, port = servers[attempt % len(servers)]
        q = make_query(qname, rdtype)
        try:
            async with sem:
                response = await _exchange(q, host, port, timeout)
        except dns.exception.Timeout:
            status = "TIMEOUT"
            continue
        except OSError:  # ICMP port unreachable, no route: the server is not there
            status = "UNREACHABLE"
            await asyncio.sleep(min(0.05 * (attempt + 1), timeout))
            continue
        except (dns.exception.DNSException, EOFError):  # malformed, or a TCP answer cut short: try again
            status = "FORMERR"
            continue
        rcode = response.rcode()
        if rcode == dns.rcode.SERVFAIL and attempt < retries:
            status = "SERVFAIL"
            continue
        text = dns.rcode.to_text(rcode)
        return (text if text in KNOWN_RCODES else "FORMERR"), response   # e.g. 11 or an unassigned code
    return status, None


async def _resolve_one(domain: str, servers, timeout, retries, sem) -> dict:
    try:
        qname = dns.name.from_text(domain)
    except dns.exception.DNSException:
        return empty_records(status="BADNAME")
    results = await asyncio.gather(*(_query(qname, t, servers, timeout, retries, sem) for t in TYPES))
    out = empty_records()
    for rdtype, (status, response) in zip(TYPES, results):
        if response is None:
            out["dns_status"][rdtype] = status
            continue
        records, chain = follow_answer(response, qname, rdtype)
        if rdtype == "A" and chain:
            out["cname_chain"] = chain
        if status == "NOERROR" and not records:
            status = "NODATA"
        out["dns_status"][rdtype] = status
        if rdtype == "SOA":
            out["soa_record"] = records[0] if records else soa_from_authority(response)
        else:
            out[FIELD[rdtype]] = records
    out["transient"] = all(s in NO_ANSWER for s in out["dns_status"].values())
    return out


def empty_records(status: str | None = None) -> dict:
    return {"a_records": [], "aaaa_records": [], "mx_records": [], "txt_records": [], "caa_records": [],
            "soa_record": "", "dns_status": {t: status for t in TYPES} if status else {},
            "cname_chain": [], "transient": False}


async def resolve_batch_async(domains: list[str], servers, timeout: float = 2.0, retries: int = 2,
                              max_in_flight: int = 256, keep_sockets: bool = False) -> list[dict]:
    sem = asyncio.Semaphore(max_in_flight)
    try:
        return list(await asyncio.gather(*(_resolve_one(d, servers, timeout, retries, sem) for d in domains)))
    finally:
        if not keep_sockets:
            _forget_loop_sockets(asyncio.get_running_loop())


class _SharedLoop:
    """One event loop per process for every DNS query, whatever the number of worker threads.

    Fifty Celery threads each running their own loop fight over the GIL and flood the server; one
    loop with one cap on queries in flight answers faster and never overruns a resolver's buffers.
    """

    def __init__(self, max_in_flight: int):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.sem: asyncio.Semaphore | None = None
        self.max_in_flight = max_in_flight
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), name="dns-loop", daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def init():
            self.sem = asyncio.Semaphore(self.max_in_flight)

        self.loop.run_until_complete(init())
        ready.set()
        self.loop.run_forever()

    def run(self, coro_fn, timeout: float):
        async def guarded():
            return await coro_fn(self.sem)

        return asyncio.run_coroutine_threadsafe(guarded(), self.loop).result(timeout)


_shared: _SharedLoop | None = None
_shared_lock = threading.Lock()
MAX_IN_FLIGHT = 512


def _loop() -> _SharedLoop:
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():  # a forked child needs its own thread
            _shared = _SharedLoop(MAX_IN_FLIGHT)
        return _shared


def resolve_batch(domains: list[str], settings) -> list[dict]:
    """Blocking entry point for worker threads: the queries run on the process's shared DNS loop."""
    servers = list(settings.dns_servers)
    timeout, retries = settings.dns_timeout, settings.dns_retries

    async def work(sem):
        return list(await asyncio.gather(*(_resolve_one(d, servers, timeout, retries, sem) for d in domains)))

    # Upper bound: every query of every domain waiting its full timeout behind the cap, plus slack.
    limit = (retries + 1) * timeout * (1 + len(domains) * len(TYPES) / MAX_IN_FLIGHT) + 30
    return _loop().run(work, limit)


def run_dns(items: list[dict], settings) -> tuple[list[dict], list[dict]]:
    """The chain's DNS step: resolve every item; -> (answered items, items no server answered for)."""
    results = resolve_batch([it["d"] for it in items], settings)
    done, transient = [], []
    for it, rec in zip(items, results):
        is_transient = rec.pop("transient")
        it["dns"] = rec
        (transient if is_transient else done).append(it)
    return done, transient


def dns_server_answers(settings) -> bool:
    """Does any DNS server answer at all? (Told apart: a domain nobody answers for vs a server down.)"""
    rec = resolve_batch(["."], settings)[0]
    return not rec["transient"]
