# shellcheck shell=bash
# Shared helpers for test/demo.sh and test/run_all.sh: install what is missing,
# build and install the extension, run throwaway PostgreSQL 15 clusters.
# Sourced, not executed; the caller sets `set -euo pipefail`.

PRESENCE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PRESENCE_PGBIN picks the PostgreSQL installation to build against and test
# with (default: Debian's PostgreSQL 15); any relocatable copy of one works.
PRESENCE_PGBIN=${PRESENCE_PGBIN:-/usr/lib/postgresql/15/bin}
PRESENCE_OS_USER=postgres
# Debian's /usr/bin wrappers pick a version by themselves; use 15 explicitly.
export PATH="$PRESENCE_PGBIN:$PATH"
export PRESENCE_REPO PRESENCE_PGBIN

# presence_log prints a progress line to stderr.
presence_log() { printf '==> %s\n' "$*" >&2; }

# presence_die prints an error and exits.
presence_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# presence_root runs a command as root: directly when root, else with sudo.
presence_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# presence_run_as_pg runs a command as the OS user postgres when root (initdb
# refuses root), as the current user otherwise. The cwd must be readable by
# that user.
presence_run_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PRESENCE_OS_USER" -- env "PATH=$PATH" "$@"
    else
        "$@"
    fi
}

# presence_ensure_deps installs the build and test dependencies that are missing.
presence_ensure_deps() {
    local pkg missing=()
    for pkg in postgresql-server-dev-15 postgresql-15-cron libpq-dev libipc-run-perl make gcc python3-psycopg2; do
        case $(dpkg -s "$pkg" 2>/dev/null) in
            *"Status: install ok installed"*) ;;
            *) missing+=("$pkg") ;;
        esac
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        presence_log "installing ${missing[*]}"
        presence_root apt-get update
        presence_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}"
    fi
    [ -x "$PRESENCE_PGBIN/pg_ctl" ] || presence_die "PostgreSQL 15 server not found in $PRESENCE_PGBIN"
}

# presence_build_install runs make and make install in the repo root.
presence_build_install() {
    local pgc="PG_CONFIG=$PRESENCE_PGBIN/pg_config"  # sudo resets PATH
    presence_log "building in $PRESENCE_REPO"
    make -s -C "$PRESENCE_REPO" "$pgc" &&
        presence_root make -s -C "$PRESENCE_REPO" "$pgc" install
}

# presence_mktemp creates a temp dir owned by postgres (when root) and prints it.
presence_mktemp() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/presence.XXXXXX")
    if [ "$(id -u)" -eq 0 ]; then chown "$PRESENCE_OS_USER:" "$dir"; fi
    printf '%s\n' "$dir"
}

# presence_start_cluster DIR PORT [DBNAME] [LISTEN] initdbs DIR/data, starts
# it with test/presence.conf and the files named in PRESENCE_EXTRA_CONF (a
# space-separated list, e.g. test/worker.conf for worker mode), with
# cron.database_name = DBNAME, on the unix socket
# dir DIR/sock and on LISTEN (default 127.0.0.1; '' for socket only), creates
# DBNAME and exports PGHOST PGPORT PGUSER PGDATABASE. DIR comes from
# presence_mktemp; postgres never reads the repo (it may not be allowed to).
presence_start_cluster() {
    local dir=$1 port=$2 db=${3:-presence_demo} listen=${4-127.0.0.1}
    if [ -n "$listen" ] && (exec 3<>"/dev/tcp/$listen/$port") 2>/dev/null; then
        presence_die "port $port on $listen is already in use; pick another port"
    fi
    presence_log "starting a cluster in $dir on port $port (cron database $db)"
    (cd "$dir" && presence_run_as_pg mkdir -p sock &&
        presence_run_as_pg initdb -D data -U postgres -A trust --no-locale -E UTF8 >init.log) ||
        { cat "$dir/init.log" >&2; presence_die "initdb failed"; }
    {
        printf '\n# From test/presence.conf:\n'
        cat "$PRESENCE_REPO/test/presence.conf"
        for f in ${PRESENCE_EXTRA_CONF:-}; do
            printf '\n# From %s:\n' "$f"
            cat "$PRESENCE_REPO/$f"
        done
        printf '\n# Throwaway cluster settings (test/lib.sh):\n'
        printf "cron.database_name = '%s'\n" "$db"
        printf "listen_addresses = '%s'\nport = %s\n" "$listen" "$port"
        printf "unix_socket_directories = '%s/sock'\n" "$dir"
    } >>"$dir/data/postgresql.conf"
    (cd "$dir" && presence_run_as_pg pg_ctl -D data -l log -w start >/dev/null) ||
        { tail -n 20 "$dir/log" >&2; presence_die "the cluster did not start (log: $dir/log)"; }
    export PGHOST="$dir/sock" PGPORT="$port" PGUSER=postgres PGDATABASE="$db"
    createdb "$db"
}

# presence_stop_cluster DIR stops the cluster in DIR/data if it is running.
presence_stop_cluster() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        (cd "$dir" && presence_run_as_pg pg_ctl -D data -m fast -w stop >/dev/null) || true
    fi
}
