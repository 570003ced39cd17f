#!/usr/bin/env python3
"""A TCP proxy that holds every chunk for a fixed delay in each direction, so that a database on
this machine answers like one across a network. Only for benchmarks (BENCHMARKS.md).

Usage: delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

Bytes keep their order. asyncio's timers wake on whole milliseconds, so a delay below 1 ms is
at least 1 ms in practice: measure the round trip it gives rather than trust the argument.
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            # Timers due at the same time run in the order they were set: the order is kept.
            loop.call_later(delay, writer.write, data)
    finally:
        loop.call_later(delay, writer.close)


async def main():
    listen_port, host, port, delay_ms = sys.argv[1:5]
    delay = float(delay_ms) / 1000

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(
            pump(client_reader, server_writer, delay),
            pump(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", int(listen_port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
