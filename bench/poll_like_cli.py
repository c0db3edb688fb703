#!/usr/bin/env python3
"""Creates a cluster and waits for it exactly as the official `tp` CLI does with --wait:
GET /request/info/{id}, sleep max(1, Retry-After) (2 s when the header is missing), until
COMPLETED or FAILED. Prints how long it took and how many polls it needed.

Usage: TENSORPOOL_ENGINE=http://127.0.0.1:8000 TENSORPOOL_KEY=tpk_... bench/poll_like_cli.py [instance_type] [runs]
"""
import json
import os
import sys
import time
import urllib.request

engine = os.environ.get("TENSORPOOL_ENGINE", "http://127.0.0.1:8000").rstrip("/")
key = os.environ["TENSORPOOL_KEY"]
instance_type = sys.argv[1] if len(sys.argv) > 1 else "1xH100"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(engine + path, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", "X-Client-Type": "cli"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, json.loads(response.read())


for run in range(runs):
    started = time.monotonic()
    status, _, created = call("POST", "/cluster/create", {"instance_type": instance_type})
    assert status == 202, status
    polls = 0
    while True:
        _, headers, info = call("GET", f"/request/info/{created['request_id']}")
        polls += 1
        if info["status"] in ("COMPLETED", "FAILED"):
            break
        retry_after = headers.get("Retry-After")
        time.sleep(max(1, int(retry_after)) if retry_after and retry_after.isdigit() else 2)
    elapsed = time.monotonic() - started
    print(f"run {run + 1}: {info['status']} after {elapsed:.2f} s with {polls} polls")
    call("DELETE", f"/cluster/{created['cluster_id']}")
