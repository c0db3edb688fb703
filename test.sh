#!/usr/bin/env bash
# Runs every test: the in-process HTTP suite on SQLite and on a throwaway PostgreSQL that the tests
# start themselves, the worker-rule tests, and the real-process crash, job and replica tests.
# Installs what the tests use when it is missing (Debian packages; needs root or sudo for that).
set -uo pipefail
cd "$(dirname "$0")"

need=""
command -v curl >/dev/null || need="$need curl"
command -v tar >/dev/null || need="$need tar"
{ command -v setsid >/dev/null && command -v unshare >/dev/null && command -v setpriv >/dev/null; } || need="$need util-linux"
command -v python3 >/dev/null || need="$need python3"
command -v bwrap >/dev/null || need="$need bubblewrap"
# tp ssh: the engine runs the real sshd inside each node; the tests log in with the stock clients.
[ -x /usr/sbin/sshd ] || need="$need openssh-server"
{ command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; } || need="$need openssh-client"
command -v rsync >/dev/null || need="$need rsync"
command -v tmux >/dev/null || need="$need tmux"   # a tmux session outlives the login that started it
# An interactive `tp ssh` session runs top, pgrep and vi on a node (its sandbox shows the host's /usr).
{ command -v top >/dev/null && command -v pgrep >/dev/null; } || need="$need procps"
command -v vi >/dev/null || need="$need vim-tiny"
# The unprivileged-engine tests make the account they run the engine as (openpool-test) with useradd.
[ -x /usr/sbin/useradd ] || need="$need passwd"
# Real S3 clients for the object storage tests (awscli comes from pip or the image).
command -v rclone >/dev/null || need="$need rclone"
command -v s3cmd >/dev/null || need="$need s3cmd"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || [ -n "${OPENPOOL_PG_BIN:-}" ] || need="$need postgresql"
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "Installing:$need"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq $need >/dev/null
    # Debian's package starts a cluster of its own; the tests run their own and do not need it.
    command -v pg_ctlcluster >/dev/null && $sudo pg_ctlcluster --force "$(ls /usr/lib/postgresql | sort -n | tail -1)" main stop >/dev/null 2>&1 || true
fi

exec dotnet test OpenPool.slnx "$@"
