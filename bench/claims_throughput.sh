#!/usr/bin/env bash
# Cluster claims per second on PostgreSQL with 1 and with 3 engine replicas, from the first submit
# to every claim COMPLETED (Simulated:ProvisionSeconds=0), and the same run's raw PostgreSQL figure:
# pgbench running a claim-and-complete transaction shaped like the engine's (claim with SKIP LOCKED,
# then a fenced completion). Everything on loopback; the PostgreSQL is a throwaway one.
# Usage: bench/claims_throughput.sh [claims=2000] [concurrency=32]
set -euo pipefail
cd "$(dirname "$0")/.."
CLAIMS=${1:-2000}
CONCURRENCY=${2:-32}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d /tmp/openpool-bench.XXXX)
chown postgres "$WORK" 2>/dev/null || true
PORT=55$((RANDOM % 900 + 100))
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    pkill -f "OpenPool.Engine.dll --data-dir $WORK" 2>/dev/null || true
    as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

dotnet build -c Release src/OpenPool.Engine -o "$WORK/engine" >/dev/null
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
psql() { command psql -h 127.0.0.1 -p "$PORT" -U postgres -qtA "$@"; }

run_replicas() {
    local n=$1 db="bench_$1"
    psql -c "CREATE DATABASE $db" postgres
    local conn="Host=127.0.0.1;Port=$PORT;Username=postgres;Database=$db;Maximum Pool Size=60"
    local urls=()
    for i in $(seq 1 "$n"); do
        local port=$((18000 + 10 * n + i))
        mkdir -p "$WORK/r$n-$i"
        dotnet "$WORK/engine/OpenPool.Engine.dll" --data-dir "$WORK/r$n-$i" --urls "http://127.0.0.1:$port" --database "$conn" \
            --Simulated:ProvisionSeconds=0 --Billing:InitialBalanceUsd=1000000 > "$WORK/r$n-$i.log" 2>&1 &
        urls+=("http://127.0.0.1:$port")
        if [ "$i" -eq 1 ]; then
            for _ in $(seq 1 100); do [ -s "$WORK/r$n-1/admin.key" ] && break; sleep 0.1; done
        fi
    done
    for u in "${urls[@]}"; do for _ in $(seq 1 100); do curl -sf "$u/healthz" >/dev/null && break; sleep 0.1; done; done
    local seconds
    seconds=$(python3 - "$(cat "$WORK/r$n-1/admin.key")" "$CLAIMS" "$CONCURRENCY" "$PORT" "$db" "${urls[@]}" <<'PY'
import concurrent.futures, json, subprocess, sys, time, urllib.request
key, claims, concurrency, port, db, urls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6:]
def create(i):
    req = urllib.request.Request(urls[i % len(urls)] + "/cluster/create", data=b'{"instance_type":"1xH100"}', method="POST",
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 202
start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    list(pool.map(create, range(claims)))
while True:
    done = int(subprocess.check_output(["psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-qtA", "-c",
        "SELECT COUNT(*) FROM requests WHERE status = 'COMPLETED'", db]).strip())
    if done >= claims:
        break
    time.sleep(0.05)
print(f"{time.monotonic() - start:.3f}")
PY
)
    pkill -f "OpenPool.Engine.dll --data-dir $WORK/r$n-" || true
    python3 -c "print(f'RESULT postgres_claims_per_s_{$n}_replicas {$CLAIMS / $seconds:.0f}  ({$CLAIMS} claims in {$seconds} s)')"
}

run_replicas 1
run_replicas 3

# Raw PostgreSQL: the claim-and-complete pair of statements the worker runs, with nothing else.
psql -c "CREATE DATABASE rawbench" postgres
psql rawbench <<SQL
CREATE TABLE q (seq BIGSERIAL PRIMARY KEY, status TEXT NOT NULL, next_run_at BIGINT NOT NULL, lease_owner TEXT, lease_token BIGINT NOT NULL DEFAULT 0, finished_at BIGINT);
CREATE INDEX q_due ON q(next_run_at) WHERE finished_at IS NULL;
INSERT INTO q (status, next_run_at) SELECT 'PENDING', 0 FROM generate_series(1, $CLAIMS * 5);
SQL
cat > "$WORK/claim.sql" <<'SQL'
BEGIN;
UPDATE q SET status = 'PROCESSING', lease_owner = 'bench', lease_token = lease_token + 1
 WHERE seq IN (SELECT seq FROM q WHERE finished_at IS NULL AND next_run_at <= 1 ORDER BY next_run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING seq, lease_token \gset
UPDATE q SET status = 'COMPLETED', finished_at = 1, lease_owner = NULL WHERE seq = :seq AND lease_token = :lease_token;
COMMIT;
SQL
TPS=$("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -c "$CONCURRENCY" -j 2 -t $((CLAIMS / CONCURRENCY)) -f "$WORK/claim.sql" rawbench 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
echo "RESULT postgres_raw_claims_per_s ${TPS%.*}"
