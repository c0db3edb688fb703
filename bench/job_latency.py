#!/usr/bin/python3
"""Measures, against a running engine, what a `tp` user waits for with jobs:
  - from `tp job push` starting to the first output line arriving on `tp job listen`;
  - from `tp job cancel` to the job reading `canceled`.
Speaks the CLI's WebSocket protocol (key frame, payload, run `command` frames with sh in the
project directory, answer `command_result`). Needs Debian's python3-websockets.

Usage: TENSORPOOL_ENGINE=http://127.0.0.1:8000 TENSORPOOL_KEY=tpk_... bench/job_latency.py <cluster_id> [runs]
"""
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

engine = os.environ.get("TENSORPOOL_ENGINE", "http://127.0.0.1:8000").rstrip("/")
key = os.environ["TENSORPOOL_KEY"]
ws_base = engine.replace("http://", "ws://").replace("https://", "wss://")


def rest(method, path):
    request = urllib.request.Request(engine + path, method=method, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


async def push(cluster_id, toml, project):
    async with websockets.connect(ws_base + "/job/push") as ws:
        await ws.send(json.dumps({"TENSORPOOL_KEY": key}))
        await ws.send(json.dumps({"tp_config": toml, "system": "Linux", "cluster_id": cluster_id, "teardown_cluster": False}))
        job_id = None
        async for raw in ws:
            frame = json.loads(raw)
            job_id = job_id or frame.get("job_id")
            if frame.get("command"):
                done = subprocess.run(frame["command"], shell=True, cwd=project, stdin=subprocess.DEVNULL, capture_output=True, text=True)
                await ws.send(json.dumps({"type": "command_result", "command": frame["command"], "exit_code": done.returncode,
                                          "command_stdout": done.stdout, "command_stderr": done.stderr}))
        return job_id


async def first_line(job_id):
    async with websockets.connect(ws_base + f"/job/listen/{job_id}") as ws:
        await ws.send(json.dumps({"TENSORPOOL_KEY": key}))
        async for raw in ws:
            frame = json.loads(raw)
            if "message" in frame and "status" not in frame:
                return frame["message"]


async def main(cluster_id, runs):
    to_output, to_canceled = [], []
    with tempfile.TemporaryDirectory() as project:
        with open(os.path.join(project, "README"), "w") as f:
            f.write("bench\n")
        for _ in range(runs):
            started = time.monotonic()
            job_id = await push(cluster_id, 'commands = ["echo first-line", "sleep 300"]\n', project)
            await first_line(job_id)
            to_output.append(time.monotonic() - started)
            started = time.monotonic()
            rest("POST", f"/job/cancel/{job_id}")
            while rest("GET", f"/job/info/{job_id}")["job_info"]["status"] != "canceled":
                time.sleep(0.05)
            to_canceled.append(time.monotonic() - started)
    print(f"push -> first output line: median {statistics.median(to_output):.3f} s, max {max(to_output):.3f} s over {runs} runs")
    print(f"cancel -> canceled:        median {statistics.median(to_canceled):.3f} s, max {max(to_canceled):.3f} s over {runs} runs")


asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10))
