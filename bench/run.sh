#!/usr/bin/env bash
# The benchmark and reliability harness: builds the engine and the harness in Release, runs every
# figure (or the groups named with --only a,b), prints one "RESULT <name> <number>" line per figure
# and writes the run's markdown table to bench/results/. Exits non-zero when a figure misses its mark.
# Usage: bench/run.sh [--quick] [--only group,group]      (bench/run.sh --help lists the groups)
set -euo pipefail
cd "$(dirname "$0")/.."

need=""
command -v wrk >/dev/null || need="$need wrk"
ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || command -v pgbench >/dev/null || need="$need postgresql postgresql-contrib"
{ command -v curl >/dev/null && command -v tar >/dev/null; } || need="$need curl tar"
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "Installing:$need" >&2
    $sudo apt-get update -qq && $sudo apt-get install -y -qq $need >/dev/null
    # Debian's package starts a cluster of its own; the harness runs its own and does not need it.
    command -v pg_ctlcluster >/dev/null && $sudo pg_ctlcluster --force "$(ls /usr/lib/postgresql | sort -n | tail -1)" main stop >/dev/null 2>&1 || true
fi

# The ssh group's engine holds a listening socket per node, 10,000 of them. .NET raises a process's
# soft descriptor limit to the hard one at start, so the hard one is what must be high enough.
hard_files=$(ulimit -Hn)
if [ "$hard_files" != unlimited ] && [ "$hard_files" -lt 65536 ]; then
    # Root may still be capped (a container's limit); the ssh group says so itself when it has too few.
    ulimit -Hn 65536 2>/dev/null || [ "$hard_files" -gt 11100 ] \
        || echo "The descriptor limit stays at $hard_files (this shell may not raise it); the ssh group needs over 11,000." >&2
fi

dotnet build -c Release bench/OpenPool.Bench -v quiet -nologo >&2
exec dotnet bench/OpenPool.Bench/bin/Release/net10.0/OpenPool.Bench.dll --results bench/results "$@"
