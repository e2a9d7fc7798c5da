#!/usr/bin/python3
"""Drive a storm of WebSocket sessions through wsgate (e2e helper).

Each worker connects with `Authorization: Bearer TOKEN` and its own
X-Correlation-ID, sends a ping, waits for the server to close, records the
close code, and starts over until --duration has passed or --stop-file
exists. Correlation IDs of sessions that ended with 1011 are appended to
--ids-file as they happen. First, one connection without a token must be
refused with HTTP 401 (never a 1011).

Prints a JSON summary; exits 1 if no session ended with --expect-code.
Uses Debian's python3-websockets (10.x API).
"""
import argparse
import asyncio
import json
import os
import ssl
import sys
import time
import uuid

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode


def ssl_context(url, cafile):
    if not url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()


async def one_session(args, ctx, headers, timeout):
    async with websockets.connect(args.url, extra_headers=headers, ssl=ctx, open_timeout=timeout,
                                  close_timeout=timeout, ping_interval=None, max_size=2 ** 20) as ws:
        try:
            pong = await ws.ping(b"e2e")
            # Nobody awaits the pong: keep a close from logging it as unretrieved.
            pong.add_done_callback(lambda f: f.cancelled() or f.exception())
        except ConnectionClosed:
            pass
        try:
            async def drain():
                async for _ in ws:
                    pass
            await asyncio.wait_for(drain(), timeout)
        except ConnectionClosed:
            pass
        except asyncio.TimeoutError:
            await ws.close(1000, "e2e: server kept the session open")
            return "open_timeout"
        return str(ws.close_code)


async def worker(n, args, ctx, stats, deadline):
    i = 0
    while time.monotonic() < deadline and not (args.stop_file and os.path.exists(args.stop_file)):
        i += 1
        cid = f"e2e-{n}-{i}-{uuid.uuid4().hex[:12]}"
        headers = [("Authorization", f"Bearer {args.token}"), ("X-Correlation-ID", cid)]
        try:
            outcome = await one_session(args, ctx, headers, args.timeout)
        except InvalidStatusCode as e:
            outcome = f"http_{e.status_code}"
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
            outcome = f"error_{type(e).__name__}"
            stats.setdefault("error_samples", []).append(f"{cid}: {e!r}"[:300])
            await asyncio.sleep(0.2)
        stats["sessions"] += 1
        stats["outcomes"][outcome] = stats["outcomes"].get(outcome, 0) + 1
        if outcome == str(args.expect_code) and args.ids_file:
            with open(args.ids_file, "a") as f:
                f.write(cid + "\n")
        if args.pause:
            await asyncio.sleep(args.pause)


async def unauthenticated_probe(args, ctx):
    try:
        async with websockets.connect(args.url, ssl=ctx, open_timeout=args.timeout,
                                      close_timeout=args.timeout, ping_interval=None) as ws:
            try:
                await asyncio.wait_for(ws.recv(), args.timeout)
            except (ConnectionClosed, asyncio.TimeoutError):
                pass
            return f"upgraded, close {ws.close_code}"
    except InvalidStatusCode as e:
        return f"http_{e.status_code}"
    except Exception as e:  # report whatever it was
        return f"error {e!r}"


async def main_async(args):
    ctx = ssl_context(args.url, args.cafile)
    summary = {"url": args.url, "sessions": 0, "outcomes": {}}
    if args.probe_401:
        summary["unauthenticated"] = await unauthenticated_probe(args, ctx)
    deadline = time.monotonic() + args.duration
    await asyncio.gather(*(worker(n, args, ctx, summary, deadline) for n in range(args.concurrency)))
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="ws:// or wss:// URL of the proxy, path included")
    ap.add_argument("--token", required=True)
    ap.add_argument("--cafile", help="CA (or self-signed certificate) for wss://")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds between sessions of one worker")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--stop-file", help="stop early once this file exists")
    ap.add_argument("--ids-file", help="append correlation IDs of --expect-code sessions here")
    ap.add_argument("--expect-code", type=int, default=1011)
    ap.add_argument("--probe-401", action="store_true", help="first check an unauthenticated connect gets 401")
    args = ap.parse_args()
    summary = asyncio.run(main_async(args))
    summary["error_samples"] = summary.get("error_samples", [])[:5]
    print(json.dumps(summary, sort_keys=True))
    ok = summary["outcomes"].get(str(args.expect_code), 0) > 0
    if args.probe_401 and summary.get("unauthenticated") != "http_401":
        print(f"FAIL an unauthenticated connect should be refused with HTTP 401, got {summary['unauthenticated']}",
              file=sys.stderr)
        ok = False
    if not summary["outcomes"].get(str(args.expect_code)):
        print(f"FAIL no session ended with close code {args.expect_code}: {summary['outcomes']}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
