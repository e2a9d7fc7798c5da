"""A scriptable upstream for the proxy's integration tests.

Prints {"ws": P, "raw": P, "http": P} on stdout once listening.
- ws (python3-websockets): behaviour chosen by path, see handler().
- raw: hand-written 101 answers for handshake checks, see raw_handler().
- http: GET /requests (upgrade request headers seen) and /events (what the
  ws server received: messages, close codes).
"""
import asyncio
import socket
import base64
import hashlib
import http
import json
import struct
import sys

import websockets

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
REQUESTS = []
EVENTS = []


def accept_for(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


async def process_request(path, headers):
    REQUESTS.append({"path": path, "headers": {k: v for k, v in headers.raw_items()}})
    if path.startswith("/deny"):
        body = b'{"error":"unauthorized","reason":"missing_token"}'
        return http.HTTPStatus.UNAUTHORIZED, [("Content-Type", "application/json"), ("X-Upstream", "yes")], body
    return None


def flood_payload(i, size):
    block = hashlib.sha256(str(i).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


async def handler(ws, path):
    cid = ws.request_headers.get("X-Correlation-ID", "")
    try:
        if path.startswith("/close/"):
            code = int(path.split("/")[2])
            await ws.recv()
            reason = "Internal error" if code == 1011 else f"closing {code}"
            await ws.close(code=code, reason=reason)
            return
        if path.startswith("/say-then-close/"):
            code = int(path.split("/")[2])
            await ws.recv()
            await ws.send('{"type":"error","code":"FACTORY_INIT_FAILED","auth":"Bearer '
                          'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}')
            await ws.close(code=code, reason="Factory SSOT validation failed")
            return
        if path.startswith("/close-with-fin"):
            # The close frame and the FIN in one segment (corked until the
            # shutdown): the proxy sees a single readiness edge for both.
            await ws.recv()
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            ws.transport.write(b"\x88\x05\x03\xe8bye")  # close 1000 "bye"
            ws.transport.write_eof()
            await asyncio.sleep(10)
            return
        if path.startswith("/flood/"):
            # COUNT binary messages of SIZE bytes, as fast as the proxy takes
            # them; message i is flood_payload(i, SIZE).
            count, size = (int(x) for x in path.split("/")[2:4])
            await ws.recv()
            for i in range(count):
                await ws.send(flood_payload(i, size))
            await ws.wait_closed()
            return
        if path.startswith("/die-midframe"):
            await ws.recv()
            ws.transport.write(b"\x82\x7e\x10\x00partial")  # 4096-byte frame, 7 bytes sent
            await asyncio.sleep(0.05)
            ws.transport.abort()
            return
        if path.startswith("/die"):
            await ws.recv()
            ws.transport.abort()
            return
        if path.startswith("/ping"):
            await ws.recv()
            pong = await ws.ping(b"rtt-probe")
            await pong
            await ws.send("pinged")
        async for message in ws:
            EVENTS.append({"cid": cid, "path": path, "message_len": len(message),
                           "text": isinstance(message, str)})
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    EVENTS.append({"cid": cid, "path": path, "close_code": ws.close_code,
                   "close_reason": ws.close_reason})


async def raw_handler(reader, writer):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(4096)
        if not chunk:
            writer.close()
            return
        head += chunk
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split()[1]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    REQUESTS.append({"path": path, "headers": headers})
    key = headers.get("sec-websocket-key", "")
    accept = accept_for(key)
    extra = ""
    if path.startswith("/bad-accept"):
        accept = accept_for("x" + key)
    elif path.startswith("/subprotocol"):
        extra = "Sec-WebSocket-Protocol: not-offered\r\n"
    elif path.startswith("/extension"):
        extra = "Sec-WebSocket-Extensions: x-unknown\r\n"
    upgrade = "" if path.startswith("/no-upgrade") else "Upgrade: websocket\r\n"
    writer.write((f"HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n").encode())
    if path.startswith("/masked-server-frame"):
        writer.write(b"\x81\x85abcd" + bytes(b ^ b"abcd"[i % 4] for i, b in enumerate(b"hello")))
    if path.startswith("/silent"):
        await asyncio.sleep(3600)
    await writer.drain()
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    writer.close()


async def http_handler(reader, writer):
    line = (await reader.readline()).decode()
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    path = line.split()[1] if len(line.split()) > 1 else "/"
    body = json.dumps(REQUESTS if path == "/requests" else EVENTS).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()
    writer.close()


async def main():
    ssl_ctx = None
    if len(sys.argv) == 3:  # upstream.py CERT KEY: the ws server speaks wss
        import ssl
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    ws_server = await websockets.serve(handler, "127.0.0.1", 0, process_request=process_request,
                                       max_size=None, ping_interval=None, ssl=ssl_ctx)
    raw_server = await asyncio.start_server(raw_handler, "127.0.0.1", 0)
    http_server = await asyncio.start_server(http_handler, "127.0.0.1", 0)
    ports = {"ws": ws_server.sockets[0].getsockname()[1],
             "raw": raw_server.sockets[0].getsockname()[1],
             "http": http_server.sockets[0].getsockname()[1]}
    print(json.dumps(ports), flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
