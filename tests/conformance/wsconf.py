"""Raw RFC 6455 client and case runner for the differential conformance suite.

A case is a script of client frames built byte by byte (so it can break every
rule). The runner connects, sends the script, and records what the server
does as an *outcome*: the handshake status, the negotiated extension, the data
frames it sends (opcode, FIN, RSV, length, payload hash), the pongs, the close
frame (code, reason hash), who closed first, and how TCP ended. The same
script is run against a reference echo server directly and through wsgate in
front of it; the outcomes are then compared (see test_conformance.py).

Data frames and control frames are kept as two separate ordered lists: RFC
6455 lets control frames be interleaved anywhere, and servers whose read loop
answers pings while an application task echoes data (python websockets) may
order a pong before or after an echo depending on how TCP segments arrived.
"""
import base64
import hashlib
import os
import socket
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "lib"))
from wsgate_harness import close_payload, read_http_response, upgrade_request, ws_key  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SYNC = b"wsconf-sync"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


# ------------------------------------------------------------------ frames

def mask_bytes(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, form=None, length=None):
    """One frame. form: 7/16/64 forces the length encoding (non-minimal
    lengths); length overrides the announced length (payload unchanged)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    m = 0x80 if mask else 0
    if form == 7:
        hdr = struct.pack("!BB", b0, m | n)
    elif form == 16:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def deflate(payload: bytes, wbits: int = 15) -> bytes:
    """permessage-deflate body of one message (fresh compressor each time,
    which is valid with or without context takeover)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -max(9, wbits))
    out = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def parse_frames(data: bytes):
    """(opcode, fin, payload_len) of each complete frame in a client script;
    stops at the first frame whose announced length is not all there."""
    out, i = [], 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        n, off = b1 & 0x7F, i + 2
        if n == 126:
            n, off = struct.unpack("!H", data[off:off + 2])[0], off + 2
        elif n == 127:
            n, off = struct.unpack("!Q", data[off:off + 8])[0], off + 8
        if b1 & 0x80:
            off += 4
        if off + n > len(data):
            out.append((b0 & 0x0F, bool(b0 & 0x80), None))
            break
        out.append((b0 & 0x0F, bool(b0 & 0x80), n))
        i = off + n
    return out


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:12]


# ------------------------------------------------------------------- cases

@dataclass
class Ctx:
    deflate: bool = False      # permessage-deflate was negotiated
    client_wbits: int = 15     # client_max_window_bits the server asked for


class Chunked:
    """Bytes sent in pieces of `size` (Autobahn's "chunked delivery")."""

    def __init__(self, data: bytes, size: int):
        self.data, self.size = data, size


@dataclass
class Case:
    id: str
    category: str
    desc: str
    script: Optional[Callable[[Ctx], list]] = None   # -> [bytes | Chunked, ...]
    offer: Optional[str] = None                       # Sec-WebSocket-Extensions offer
    # Expected wsgate intervention (enforce mode): the close code the client
    # sees from the proxy, and the tap violation behind it.
    proxy_code: Optional[int] = None
    violation: Optional[str] = None
    note: str = ""                                    # expected difference, in words
    # Handshake cases: the raw request, and the proxy's own answer.
    request: Optional[Callable[[], bytes]] = None
    proxy_status: Optional[int] = None
    known_bug: str = ""                               # set from cases.KNOWN_BUGS


# ------------------------------------------------------------------ runner

class Timeout(Exception):
    pass


class Reader:
    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = bytearray(leftover)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise Timeout()
        if not chunk:
            raise EOFError()
        self.buf += chunk

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)

    def frame(self, deadline):
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            self._need(off + 4, deadline)
            key, off = bytes(self.buf[off:off + 4]), off + 4
        self._need(off + n, deadline)
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        if masked:
            payload = mask_bytes(payload, key)
        return b0 & 0x80 != 0, (b0 >> 4) & 7, b0 & 0x0F, masked, payload


def _accept(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def _ext_params(ext):
    params = {}
    for part in (ext or "").split(";")[1:]:
        k, _, v = part.strip().partition("=")
        params[k.strip()] = v.strip().strip('"')
    return params


def _tcp_end(sock, deadline):
    """After a close handshake (or a refused upgrade): how TCP ends."""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            sock.settimeout(remaining)
            if not sock.recv(65536):
                return "eof"
    except socket.timeout:
        return "timeout"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"


def run_case(port: int, case: Case, timeout: float = 4.0, close_wait: float = 2.0) -> dict:
    """Runs one case against 127.0.0.1:port and returns its outcome."""
    out = {"status": None, "ext": None, "data": [], "pongs": [], "pings": [],
           "close": None, "closer": None, "tcp": None}
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if case.request is not None:
            sock.sendall(case.request())
            status, headers, _ = read_http_response(sock, timeout)
            out["status"] = status
            out["protocol"] = headers.get("sec-websocket-protocol")
            if status == 101:
                out["accept_ok"] = "sec-websocket-accept" in headers
            else:
                out["tcp"] = _tcp_end(sock, time.monotonic() + 1.0)
            return out
        key = ws_key()
        extra = {"Sec-WebSocket-Extensions": case.offer} if case.offer else None
        sock.sendall(upgrade_request("/", key=key, extra=extra))
        status, headers, rest = read_http_response(sock, timeout)
        out["status"] = status
        if status != 101:
            out["tcp"] = _tcp_end(sock, time.monotonic() + 1.0)
            return out
        assert headers.get("sec-websocket-accept") == _accept(key), headers
        ext = headers.get("sec-websocket-extensions")
        out["ext"] = ext
        ctx = Ctx(deflate=bool(ext) and ext.strip().startswith("permessage-deflate"))
        if ctx.deflate:
            bits = _ext_params(ext).get("client_max_window_bits")
            if bits:
                ctx.client_wbits = int(bits)
        return _run_frames(sock, Reader(sock, rest), case, ctx, out, timeout, close_wait)
    finally:
        sock.close()


def _starts_with_close(item):
    data = item.data if isinstance(item, Chunked) else item
    p = parse_frames(data[:14] + b"\0" * 200)
    return bool(p) and p[0][0] == CLOSE


def _run_frames(sock, reader, case, ctx, out, timeout, close_wait):
    items = list(case.script(ctx))
    flat = b"".join(i.data if isinstance(i, Chunked) else i for i in items)
    parsed = parse_frames(flat)
    client_closes = any(op == CLOSE for op, _, _ in parsed)
    expect = 0
    for op, fin, n in parsed:
        if op == CLOSE or n is None:
            break
        if op in (TEXT, BINARY, CONT) and fin:
            expect += 1
    if not client_closes:
        items.append(frame(PING, SYNC))
    out["script_closes"] = client_closes
    out["closer"] = "client" if client_closes else None
    st = {"got": 0, "synced": False, "sent_close": False}

    def receive(deadline):
        """Reads and records one frame; False once TCP has ended."""
        try:
            fin, rsv, op, masked, payload = reader.frame(deadline)
        except EOFError:
            out["tcp"] = "eof"
            return False
        except (ConnectionResetError, BrokenPipeError):
            out["tcp"] = "reset"
            return False
        if out["close"] is not None:
            out.setdefault("after_close", []).append(op)
            return True
        desc = f"op={op} fin={int(fin)} rsv={rsv} len={len(payload)} sha={digest(payload)}"
        if masked:
            desc += " MASKED"
        if op not in (CLOSE, PING, PONG):
            out["data"].append(desc)
            if fin and op in (TEXT, BINARY, CONT):
                st["got"] += 1
        elif op == PONG:
            if payload == SYNC and not st["synced"]:
                st["synced"] = True
            else:
                out["pongs"].append(desc)
        elif op == PING:
            out["pings"].append(desc)
            _send(sock, frame(PONG, payload))
        else:  # close
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            out["close"] = [code, digest(payload[2:]), len(payload)]
            out["close_reason"] = payload[2:].decode("utf-8", "replace")
            if not st["sent_close"]:
                out["closer"] = "server"
                _send(sock, frame(CLOSE, payload[:2]))
                st["sent_close"] = True
        return True

    # Send the script. Before the client's own close, wait until the messages
    # sent so far have come back (a sync ping marks the point): a server may
    # legally answer a close before its application echoed what came first
    # (python websockets does), which would make the outcome a race.
    try:
        for item in items:
            if (_starts_with_close(item) and expect and out["close"] is None
                    and out["tcp"] is None):
                sock.sendall(frame(PING, SYNC))
                deadline = time.monotonic() + timeout
                try:
                    while not (st["synced"] and st["got"] >= expect) and out["close"] is None:
                        if not receive(deadline):
                            break
                except Timeout:
                    out["stalled"] = st["got"]
                if out["tcp"] is not None or out["close"] is not None:
                    break
                st["synced"] = False
            if isinstance(item, Chunked):
                for k in range(0, len(item.data), item.size):
                    sock.sendall(item.data[k:k + item.size])
            else:
                sock.sendall(item)
            if _starts_with_close(item):
                st["sent_close"] = True
    except (BrokenPipeError, ConnectionResetError):
        out["send_error"] = True
    if client_closes:
        st["sent_close"] = True

    deadline = time.monotonic() + (close_wait if st["sent_close"] else timeout)
    while out["tcp"] is None:
        if not st["sent_close"] and st["synced"] and st["got"] >= expect:
            _send(sock, frame(CLOSE, close_payload(1000)))
            st["sent_close"], out["closer"] = True, "client"
            deadline = time.monotonic() + close_wait
        try:
            was_closed = out["close"] is not None
            if not receive(deadline):
                break
            if st["synced"] and not st["sent_close"]:
                deadline = min(deadline, time.monotonic() + 1.0)
            if out["close"] is not None and not was_closed:
                deadline = time.monotonic() + close_wait
        except Timeout:
            if st["sent_close"]:
                out["tcp"] = "timeout"
                break
            # The server went quiet before echoing everything: close anyway.
            out["stalled"] = st["got"]
            st["synced"], expect = True, st["got"]
    return out


def _send(sock, data):
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass


COMPARED = ("status", "ext", "data", "pongs", "pings", "close", "closer", "tcp", "protocol",
            "accept_ok", "after_close")


def key(outcome: dict) -> dict:
    """The part of an outcome that must be identical direct and through wsgate."""
    return {k: outcome.get(k) for k in COMPARED}
