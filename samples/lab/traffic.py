"""Ordinary (non-Weave) traffic for the lab: ping, a small TCP exchange, DNS-like UDP; stdlib, bounded."""

# Usage inside a namespace:  traffic.py ping DST COUNT INTERVAL SIZE [df]
#                            traffic.py tcp-server ADDR PORT SECONDS | tcp-client ADDR PORT
#                            traffic.py dns-server ADDR SECONDS      | dns-client ADDR COUNT
# (the lab machine has no ping binary, and CI does not install one either)

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time

IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2
IP_PMTUDISC_DONT = 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping(dst: str, count: int, interval: float, size: int, df: bool) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
    ident = os.getpid() & 0xFFFF
    replies = 0
    for seq in range(1, count + 1):
        body = bytes(size)
        header = struct.pack(">BBHHH", 8, 0, 0, ident, seq)
        packet = header[:2] + struct.pack(">H", checksum(header + body)) + header[4:] + body
        try:
            sock.sendto(packet, (dst, 0))
        except OSError as exc:
            print(f"ping seq {seq}: {exc.strerror}", file=sys.stderr)
        deadline = time.monotonic() + interval
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if ready:
                data = sock.recv(65535)
                if len(data) >= 28 and data[20] == 0:
                    replies += 1
    print(f"ping {dst}: {replies}/{count} replies")
    return 0


def tcp_server(addr: str, port: int, seconds: float) -> int:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(2)
    srv.settimeout(seconds)
    try:
        conn, _ = srv.accept()
    except TimeoutError:
        return 0
    conn.settimeout(seconds)
    request = conn.recv(4096)
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3000\r\n\r\n" + b"x" * 3000 if request else b"")
    conn.close()
    return 0


def tcp_client(addr: str, port: int) -> int:
    conn = socket.create_connection((addr, port), timeout=5)
    conn.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
    received = 0
    while chunk := conn.recv(65536):
        received += len(chunk)
    conn.close()
    print(f"tcp: {received} bytes")
    return 0


def dns_server(addr: str, seconds: float) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            query, peer = sock.recvfrom(512)
            # answer: same id, QR set, one A record 10.0.2.2
            answer = query[:2] + b"\x81\x80" + query[4:6] + b"\x00\x01\x00\x00\x00\x00" + query[12:]
            answer += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton("10.0.2.2")
            sock.sendto(answer, peer)
    return 0


def dns_client(addr: str, count: int) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    for qid in range(1, count + 1):
        qname = b"".join(bytes([len(p)]) + p for p in (b"peer-b", b"lab", b"example")) + b"\x00"
        query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"
        sock.sendto(query, (addr, 53))
        try:
            sock.recv(512)
        except TimeoutError:
            pass
        time.sleep(0.2)
    return 0


def main(argv: list[str]) -> int:
    mode = argv[1]
    if mode == "ping":
        return ping(argv[2], int(argv[3]), float(argv[4]), int(argv[5]), len(argv) > 6 and argv[6] == "df")
    if mode == "tcp-server":
        return tcp_server(argv[2], int(argv[3]), float(argv[4]))
    if mode == "tcp-client":
        return tcp_client(argv[2], int(argv[3]))
    if mode == "dns-server":
        return dns_server(argv[2], float(argv[3]))
    if mode == "dns-client":
        return dns_client(argv[2], int(argv[3]))
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
