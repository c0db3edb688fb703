#!/usr/bin/env bash
# Claims/s on SQLite for two revisions of the engine, measured alternately in one run (A, B, A, B…)
# so machine noise hits both alike. Prints each run and the ratio of medians (B / A).
# Usage: bench/compare_claims.sh <baseline-rev> [candidate-rev=HEAD] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=$1; CAND=${2:-HEAD}; ROUNDS=${3:-3}
WORK=$(mktemp -d /tmp/openpool-compare.XXXX)
trap 'pkill -f "$WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for rev in "$BASE" "$CAND"; do
    git worktree add -q --detach "$WORK/src-$rev" "$rev"
    dotnet build -c Release "$WORK/src-$rev/src/OpenPool.Engine" -o "$WORK/bin-$rev" >/dev/null
    git worktree remove --force "$WORK/src-$rev"
done
run() {
    local rev=$1 dir="$WORK/data-$1-$2" port=$((18500 + RANDOM % 400))
    dotnet "$WORK/bin-$rev/OpenPool.Engine.dll" --data-dir "$dir" --urls "http://127.0.0.1:$port" \
        --Simulated:ProvisionSeconds=0 --Billing:InitialBalanceUsd=1000000 > "$dir.log" 2>&1 &
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    python3 bench/sqlite_claims.py "http://127.0.0.1:$port" "$(cat "$dir/admin.key")" "$dir/openpool.db" 2000 32
    kill %1; wait 2>/dev/null || true
}
a=(); b=()
for i in $(seq 1 "$ROUNDS"); do
    a+=("$(run "$BASE" "$i")"); b+=("$(run "$CAND" "$i")")
    echo "round $i: $BASE ${a[-1]}/s, $CAND ${b[-1]}/s"
done
python3 -c "import statistics,sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print(f'RESULT sqlite_claims_per_s_ratio {statistics.median(b)/statistics.median(a):.2f}  (median {statistics.median(b):.0f}/s vs {statistics.median(a):.0f}/s)')" "${a[*]}" "${b[*]}"
