"""A tiny authoritative DNS server on 127.0.0.1 (UDP) answering TXT queries from a dict, for
domain-verification tests against the real dnspython resolver path
(``SSO_GATE_DNS_NAMESERVERS=127.0.0.1:<port>``). Unknown names get NXDOMAIN."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["TxtServer", "run_dns"]


class TxtServer:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.port = 0

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        self.queries.append(name)
        values = self.records.get(name)
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and values:
            quoted = ['"' + v.replace('"', '\\"') + '"' for v in values]
            response.answer.append(
                dns.rrset.from_text(
                    question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, *quoted
                )
            )
        return response.to_wire()


@contextmanager
def run_dns() -> Iterator[TxtServer]:
    server_state = TxtServer()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(server_state.answer(data), self.client_address)

    udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
    server_state.port = udp.server_address[1]
    thread = threading.Thread(target=udp.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        udp.shutdown()
        udp.server_close()
