#!/usr/bin/env python3
"""Tries a running csatwatch as an attacker would, and prints figures.

  slow N      N clients send request headers one byte a second; reports how
              long the server kept them open, and the latency of signed
              webhooks posted meanwhile.
  idle N      opens N idle connections (keeps them open), then posts signed
              webhooks and reports their status and latency.

The target needs a generic source named `inhouse` with `secret = SECRET`,
`signature_prefix = "sha256="` and fields `/ticket/id` and `/rating/score`
(as in tests/it/daemon.rs). Needs `ulimit -n` above N for `idle`.

usage: flood-check.py HOST:PORT SECRET slow|idle N
"""

import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import time
import uuid


async def post_signed(host, port, secret):
    body = json.dumps({"ticket": {"id": f"flood-{uuid.uuid4().hex[:12]}"},
                       "rating": {"score": 1}}).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (f"POST /webhooks/inhouse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Signature: sha256={sig}\r\n\r\n").encode()
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    writer.write(head + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    status = int(answer.split(b" ")[1]) if answer.startswith(b"HTTP/1.1") else 0
    return status, (time.monotonic() - started) * 1000


async def slow_client(host, port):
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    headers = b"POST /webhooks/inhouse HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 1000

    async def dribble():
        for byte in headers:
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(1)

    task = asyncio.create_task(dribble())
    try:
        await asyncio.wait_for(reader.read(), 120)
    except (ConnectionError, asyncio.TimeoutError):
        pass
    task.cancel()
    return time.monotonic() - started


async def webhooks(host, port, secret, n, every):
    results = []
    for _ in range(n):
        results.append(await post_signed(host, port, secret))
        await asyncio.sleep(every)
    return results


def report(results):
    statuses = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = [ms for _, ms in results]
    print(f"signed webhooks: {len(results)}, statuses {statuses}, "
          f"latency median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms")


async def main():
    target, secret, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    host, port = target.rsplit(":", 1)
    port = int(port)
    if mode == "slow":
        clients = [asyncio.create_task(slow_client(host, port)) for _ in range(n)]
        await asyncio.sleep(1)
        hooks = await webhooks(host, port, secret, 20, 0.25)
        open_for = await asyncio.gather(*clients)
        print(f"slow clients: {n}, kept open median {statistics.median(open_for):.1f} s, "
              f"max {max(open_for):.1f} s")
        report(hooks)
    elif mode == "idle":
        held = []
        started = time.monotonic()
        for _ in range(n):
            try:
                held.append(await asyncio.wait_for(asyncio.open_connection(host, port), 10))
            except (OSError, asyncio.TimeoutError) as e:
                print(f"connect failed after {len(held)}: {e}")
                break
        print(f"idle connections opened: {len(held)} in {time.monotonic() - started:.1f} s")
        report(await webhooks(host, port, secret, 20, 0.1))
    else:
        sys.exit(__doc__)


asyncio.run(main())
