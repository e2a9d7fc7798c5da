"""An independent decoder agrees with the tap: the client leg of a session is
captured with dumpcap and decoded by tshark's WebSocket dissector, and its
frame counts per direction and opcode, and its frame bytes, must equal what
wsgate counted (wsgate_frames_total, wsgate_bytes_total)."""
import collections
import json
import os
import shutil
import signal
import struct
import subprocess
import time

from wsgate_harness import frame, metric, metrics, raw_connect, wait_for

OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def start_capture(port, path):
    # dumpcap, not tshark, captures: it is the part that holds the privilege.
    proc = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The file appears once the interface is open; a little more for the filter.
    wait_for(lambda: proc.poll() is not None or (os.path.exists(path) and os.path.getsize(path) > 0),
             timeout=10, what="dumpcap to start")
    assert proc.poll() is None, "dumpcap failed: " + proc.stderr.read().decode()
    time.sleep(0.3)
    return proc


def stop_capture(proc):
    time.sleep(0.3)  # the last segments
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def tshark_frames(path, proxy_port):
    """[(direction, opcode, frame_bytes)] for every WebSocket frame tshark
    decodes; direction as wsgate names it."""
    out = subprocess.run(
        ["tshark", "-r", path, "-d", f"tcp.port=={proxy_port},http", "-Y", "websocket",
         "-T", "json", "--no-duplicate-keys", "-J", "tcp websocket"],
        check=True, capture_output=True, text=True, timeout=60).stdout
    frames = []
    for packet in json.loads(out):
        layers = packet["_source"]["layers"]
        src = int(layers["tcp"]["tcp.srcport"])
        direction = "upstream_to_client" if src == proxy_port else "client_to_upstream"
        pdus = layers["websocket"]
        for ws in pdus if isinstance(pdus, list) else [pdus]:
            n = int(ws["websocket.payload_length"])
            header = 2
            if n == 126:
                n, header = int(ws["websocket.payload_length_ext_16"]), header + 2
            elif n == 127:
                n, header = int(ws["websocket.payload_length_ext_64"]), header + 8
            header += 4 if ws["websocket.mask"] in ("1", "True", "true") else 0
            frames.append((direction, OPCODES[int(ws["websocket.opcode"])], header + n))
    return frames


def test_tshark_decodes_the_same_frames_the_tap_counted(upstream, proxy_factory, tmp_path):
    assert shutil.which("tshark") and shutil.which("dumpcap"), "deploy/bootstrap.sh installs tshark"
    proxy = proxy_factory(f"ws://127.0.0.1:{upstream.ws}")
    port, admin = proxy.ports["listen"], proxy.ports["admin"]
    pcap = str(tmp_path / "client-leg.pcapng")
    capture = start_capture(port, pcap)
    try:
        sock, status, _, reader = raw_connect(port, "/echo")
        assert status == 101
        sent = [frame(1, b"hello %d" % i) for i in range(3)]
        sent += [frame(2, os.urandom(70000)), frame(2, os.urandom(300))]
        sent += [frame(1, b"frag-", fin=False), frame(9, b"p"), frame(0, b"ment")]
        for f in sent:
            sock.sendall(f)
        echoes = [reader.read() for _ in range(7)]  # 3 + 2 + pong + the joined text
        assert (True, 10, b"p") in echoes and (True, 1, b"frag-ment") in echoes
        sock.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
        assert reader.read_close() == (1000, "bye")
        assert reader.eof()
        sock.close()
        wait_for(lambda: metric(admin, "wsgate_connections_active") == 0, what="session end")
    finally:
        stop_capture(capture)

    frames = tshark_frames(pcap, port)
    decoded = collections.Counter((d, op) for d, op, _ in frames)
    # What the client sent is known exactly...
    assert {op: n for (d, op), n in decoded.items() if d == "client_to_upstream"} == {
        "text": 4, "binary": 2, "ping": 1, "continuation": 1, "close": 1}
    # ...and every count wsgate published matches the decoder, both ways.
    counted = collections.Counter()
    for key, value in metrics(admin).items():
        if key.startswith("wsgate_frames_total{") and value:
            labels = dict(kv.split("=") for kv in key[key.index("{") + 1:-1].split(","))
            counted[(labels["direction"].strip('"'), labels["opcode"].strip('"'))] = int(value)
    assert counted == decoded
    for direction in ("client_to_upstream", "upstream_to_client"):
        wire = sum(n for d, _, n in frames if d == direction)
        assert metric(admin, "wsgate_bytes_total", direction=direction) == wire, direction
