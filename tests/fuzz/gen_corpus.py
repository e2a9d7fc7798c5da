#!/usr/bin/env python3
"""Writes the committed seed corpora under tests/fuzz/corpus/<target>/.

Small valid and invalid WebSocket streams for the frame tap targets, close
payloads and UTF-8 strings. Deterministic: rerunning rewrites the same files.

    python3 tests/fuzz/gen_corpus.py
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])

CONT, TEXT, BIN, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# Configuration byte of fuzz_tap_common.hpp.
DEFLATE, UTF8, CAPTURE, SMALL_MSG, FEW_FRAGS = 0x01, 0x02, 0x04, 0x20, 0x40


def frame(op, payload=b"", fin=True, rsv=0, mask=None, form=None, announced=None):
    out = bytearray([(0x80 if fin else 0) | (rsv & 0x70) | (op & 0x0F)])
    n = len(payload) if announced is None else announced
    mbit = 0x80 if mask is not None else 0
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    if form == 7:
        out.append(mbit | n)
    elif form == 16:
        out.append(mbit | 126)
        out += struct.pack(">H", n)
    else:
        out.append(mbit | 127)
        out += struct.pack(">Q", n)
    if mask is not None:
        out += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(out) + payload


def close(code, reason=b""):
    return struct.pack(">H", code) + reason


def streams(masked):
    """(name, config flags, stream) for one direction."""
    m = KEY if masked else None
    wrong = None if masked else KEY
    f = lambda op, p=b"", **kw: frame(op, p, mask=kw.pop("mask", m), **kw)
    return [
        ("hello", 0, f(TEXT, b"Hello")),
        ("binary_lengths", 0, f(BIN, bytes(125)) + f(BIN, bytes(126)) + f(BIN, bytes(300))),
        ("len64_header_only", 0, f(BIN, b"\x00" * 16, announced=70000)),
        ("fragmented_pings", CAPTURE | (3 << 3) | UTF8,
         f(TEXT, b"Hel", fin=False) + f(PING, b"1") + f(CONT, b"lo, ", fin=False)
         + f(PONG, b"2") + f(CONT, b"", fin=False) + f(CONT, b"world")),
        ("close_1000", 0, f(TEXT, b"bye?") + f(CLOSE, close(1000, b"bye"))),
        ("close_1011", CAPTURE,
         f(TEXT, b'{"type":"error","error":"FACTORY_INIT_FAILED"}')
         + f(CLOSE, close(1011, b"Factory SSOT validation failed"))),
        ("close_empty", 0, f(CLOSE)),
        ("close_one_byte", 0, f(CLOSE, b"\x03")),
        ("close_code_1005", 0, f(CLOSE, close(1005))),
        ("close_code_2999", 0, f(CLOSE, close(2999))),
        ("close_reason_bad_utf8", 0, f(CLOSE, close(1000, b"\xed\xa0\x80"))),
        ("close_reason_utf8", 0, f(CLOSE, close(4000, "κόσμε 😀".encode()))),
        ("frame_after_close", 0, f(CLOSE, close(1001)) + f(PING, b"late")),
        ("tib_length", 0, f(BIN, announced=1 << 40)),
        ("msb_length", 0, f(BIN, announced=(1 << 63) + 1)),
        ("len16_not_minimal", 0, f(BIN, bytes(5), form=16)),
        ("len64_not_minimal", 0, f(BIN, bytes(5), form=64)),
        ("reserved_opcodes", 0, b"".join(f(op, b"r") for op in (3, 7, 0xB, 0xF))),
        ("rsv_bits", 0, f(TEXT, b"a", rsv=0x40) + f(TEXT, b"b", rsv=0x20) + f(TEXT, b"c", rsv=0x10)),
        ("deflate", DEFLATE | CAPTURE,
         f(TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv=0x40)
         + f(BIN, b"x", rsv=0x40, fin=False) + f(CONT, b"y", rsv=0x40) + f(PING, b"", rsv=0x40)),
        ("wrong_mask", 0, frame(TEXT, b"mask?", mask=wrong)),
        ("control_too_long", 0, f(PING, bytes(126)) + f(CLOSE, bytes(130))),
        ("control_fragmented", 0, f(PING, b"p", fin=False)),
        ("unexpected_continuation", 0, f(CONT, b"x")),
        ("expected_continuation", 0, f(TEXT, b"a", fin=False) + f(BIN, b"b")),
        ("too_many_fragments", FEW_FRAGS,
         f(BIN, b"a", fin=False) + f(CONT, fin=False) * 4 + f(CONT, b"z")),
        ("message_too_big", SMALL_MSG, f(BIN, bytes(200), fin=False) + f(CONT, bytes(200))),
        ("text_bad_utf8", UTF8, f(TEXT, b"ok \xc0\xaf") + f(TEXT, b"\xe2\x82", fin=False) + f(CONT)),
        ("capture_truncated", CAPTURE, f(TEXT, b"0123456789abcdef")),
        ("truncated_header", 0, f(TEXT, b"Hello")[:3]),
    ]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(data)


def main():
    for target in ("fuzz_tap_client", "fuzz_tap_server", "fuzz_close_payload", "fuzz_utf8"):
        shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)

    for target, masked in (("fuzz_tap_client", True), ("fuzz_tap_server", False)):
        for i, (name, flags, stream) in enumerate(streams(masked)):
            write(target, name, bytes([flags, i * 37 & 0xFF]) + stream)

    payloads = {
        "empty": b"", "one_byte": b"\x03", "normal_1000": close(1000),
        "going_away": close(1001, b"going away"), "internal_1011": close(1011, b"Internal error"),
        "try_again_1013": close(1013), "private_4999": close(4999, b"x"),
        "code_999": close(999), "code_1004": close(1004), "code_1005": close(1005),
        "code_1006": close(1006), "code_1015": close(1015), "code_1016": close(1016),
        "code_2999": close(2999), "code_3000": close(3000), "code_5000": close(5000),
        "reason_max": close(1000, b"r" * 123), "reason_too_long": close(1000, b"r" * 124),
        "reason_utf8": close(1000, "κόσμε".encode()), "reason_overlong": close(1000, b"\xc0\xaf"),
        "reason_surrogate": close(1000, b"\xed\xbf\xbf"), "reason_truncated": close(1000, b"\xe2\x82"),
    }
    for i, (name, p) in enumerate(sorted(payloads.items())):
        write("fuzz_close_payload", name, KEY + bytes([i * 11 & 0xFF]) + p)

    texts = {
        "ascii": b"Hello, world", "kosme": "κόσμε".encode(), "emoji": "😀".encode(),
        "boundaries": "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff".encode(),
        "lone_continuation": b"\x80\xbf", "lonely_start": b"\xc0 \xe0 \xf0 ",
        "missing_last": b"\xe2\x82", "impossible": b"\xfe\xff", "overlong_slash": b"\xc0\xaf",
        "overlong_max": b"\xf0\x8f\xbf\xbf", "surrogate_pair": b"\xed\xa0\x80\xed\xb0\x80",
        "above_max": b"\xf4\x90\x80\x80", "nonchar": "\ufffe".encode(),
    }
    for name, t in sorted(texts.items()):
        write("fuzz_utf8", name, t)


if __name__ == "__main__":
    main()
