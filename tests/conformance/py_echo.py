"""Reference echo server on python3-websockets (Debian's 10.4).

Echoes every message with its type; permessage-deflate on (the library's
default), no message size limit below 64 MiB. Prints {"port": P} on stdout.
"""
import asyncio
import json
import signal
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=64 << 20,
                                max_queue=None, ping_interval=None,
                                close_timeout=2) as server:
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(json.dumps({"port": port}) + "\n")
        sys.stdout.flush()
        await stop


if __name__ == "__main__":
    asyncio.run(main())
