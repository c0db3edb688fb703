#!/usr/bin/env python3
"""Cluster claims per second on an engine with the embedded SQLite: N creates submitted by C
concurrent clients (Simulated:ProvisionSeconds=0 on the engine), timed from the first submit until
the engine's database shows every request COMPLETED.

Usage: bench/sqlite_claims.py <engine_url> <admin_key> <sqlite_db_path> [claims=2000] [concurrency=32]
"""
import concurrent.futures
import sqlite3
import sys
import time
import urllib.request

url, key, db_path = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
claims = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 32


def create(_):
    request = urllib.request.Request(url + "/cluster/create", data=b'{"instance_type":"1xH100"}', method="POST",
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202


started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    list(pool.map(create, range(claims)))
db = sqlite3.connect(db_path)
while db.execute("SELECT COUNT(*) FROM requests WHERE status = 'COMPLETED'").fetchone()[0] < claims:
    time.sleep(0.02)
print(f"{claims / (time.monotonic() - started):.0f}")
