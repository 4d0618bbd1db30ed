#!/usr/bin/env bash
# The Debian package (DESIGN.md section 12), slow tier (./test/run_all.sh
# --all): about a minute.
#
# Builds postgresql-15-presence with dpkg-buildpackage -us -uc -b from a
# clean copy of the tree (the files git knows, nothing built), installs it
# with dpkg -i on the system's PostgreSQL 15, starts a fresh cluster with
# /usr/lib/postgresql/15/bin, and runs CREATE EXTENSION, a join, and the
# upgrade path from 0.1 there; then runs the package's autopkgtest
# (debian/tests/installcheck: the regression and isolation suites against
# the installed package). Finally removes the package with dpkg -r and puts
# back the presence files the system's PostgreSQL had before (the ones
# `make install` put there), so that later suites still find presence.
#
# It changes the system's PostgreSQL 15 installation: run it where that is
# yours (CI runs it after the other suites). Needs root (or sudo).
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/../integration/helpers.bash"

started=$SECONDS
pgbin=/usr/lib/postgresql/15/bin
pkg=postgresql-15-presence
work=""
cluster=""
installed=false
backup=""

# as_root CMD... runs a command as root (directly, or with sudo).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# dpkg_locked ARGS... runs dpkg, waiting (up to 10 min) while another
# dpkg or apt holds the lock.
dpkg_locked() {
    local i out
    for ((i = 0; i < 600; i++)); do
        if out=$(as_root dpkg "$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
        case $out in
            *"lock"*) sleep 1 ;;
            *) printf '%s\n' "$out" >&2; return 1 ;;
        esac
    done
    printf '%s\n' "$out" >&2
    return 1
}

# it_on_exit (called by the EXIT trap, also on failure): stop the cluster,
# remove the package, put back what was there, remove the temp dir.
it_on_exit() {
    if [ -n "$cluster" ] && [ -f "$cluster/data/postmaster.pid" ]; then
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$cluster/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if "$installed"; then dpkg_locked -r "$pkg" >/dev/null || true; fi
    if [ -n "$backup" ] && [ -s "$backup" ]; then as_root tar -C / -xpf "$backup" || true; fi
    if [ -n "$work" ]; then as_root rm -rf "$work"; fi
}

it_apt_install dpkg-dev debhelper build-essential postgresql-server-dev-all postgresql-15 \
    postgresql-15-cron libipc-run-perl
[ -x "$pgbin/postgres" ] || it_fail "no PostgreSQL 15 server in $pgbin"
pkglibdir=$("$pgbin/pg_config" --pkglibdir)
sharedir=$("$pgbin/pg_config" --sharedir)

work=$(mktemp -d "${TMPDIR:-/tmp}/presence-deb.XXXXXX")
chmod 755 "$work"

# What the system's PostgreSQL has of presence now (make install's files),
# to put back at the end.
backup=$work/system-presence.tar
(cd / && for f in "${pkglibdir#/}/presence.so" "${pkglibdir#/}/bitcode/presence" \
    "${pkglibdir#/}/bitcode/presence.index.bc" "${sharedir#/}"/extension/presence.control \
    "${sharedir#/}"/extension/presence--*.sql; do
    [ -e "$f" ] && printf '%s\n' "$f"
done) >"$work/system-files" || true
if [ -s "$work/system-files" ]; then
    as_root tar -C / -cpf "$backup" -T "$work/system-files"
    it_log "saved the system's presence files ($(wc -l <"$work/system-files") paths) to restore at the end"
fi
if dpkg -s "$pkg" >/dev/null 2>&1; then it_fail "$pkg is already installed; remove it first"; fi

# A clean copy of the tree: what git tracks plus new files not ignored,
# nothing built (a clean clone gives the same).
version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$PRESENCE_REPO/presence.control")
src=$work/pg-presence-$version
mkdir "$src"
if git -C "$PRESENCE_REPO" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$PRESENCE_REPO" ls-files -z --cached --others --exclude-standard |
        (cd "$PRESENCE_REPO" && tar --null -T - -cf -) | tar -C "$src" -xf -
else
    tar -C "$PRESENCE_REPO" -cf - . | tar -C "$src" -xf -
    make -s -C "$src" clean PG_CONFIG="$pgbin/pg_config" >/dev/null
fi
[ -z "$(find "$src" -name '*.o' -o -name '*.so' | head -n 1)" ] || it_fail "the copy holds build products"

# The versions agree: presence.control, debian/changelog, META.json.
debversion=$(cd "$src" && dpkg-parsechangelog -S Version)
[ "${debversion%-*}" = "$version" ] ||
    it_fail "debian/changelog says $debversion, presence.control says $version"
grep -Eq "\"version\": *\"${version//./\\.}(\\.0)?\"" "$src/META.json" ||
    it_fail "META.json does not say version $version"

it_log "dpkg-buildpackage -us -uc -b in a clean copy of the tree (version $debversion)"
(cd "$src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
    { tail -n 40 "$work/build.log" >&2; it_fail "dpkg-buildpackage failed (end of its log above)"; }
deb=$(ls "$work/${pkg}_${debversion}_"*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { ls "$work" >&2; it_fail "no ${pkg}_${debversion}_*.deb was built"; }
it_log "built $(basename "$deb") ($(du -k "$deb" | cut -f1) kB)"

# What it holds: the library, the control file, the current install script,
# the older install scripts and every upgrade script of sql/.
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$work/contents"
expect=("$pkglibdir/presence.so" "$sharedir/extension/presence.control"
    "$sharedir/extension/presence--$version.sql")
for f in "$src"/sql/presence--*.sql; do expect+=("$sharedir/extension/$(basename "$f")"); done
for f in "${expect[@]}"; do
    grep -qxF "$f" "$work/contents" || it_fail "the package lacks $f"
done
it_log "ok: the package holds presence.so, presence.control and $(grep -c '/extension/presence--' "$work/contents") SQL scripts"

dpkg_locked -i "$deb" >/dev/null || it_fail "dpkg -i $(basename "$deb") failed"
installed=true
owner=$(dpkg -S "$pkglibdir/presence.so" | cut -d: -f1)
[ "$owner" = "$pkg" ] || it_fail "$pkglibdir/presence.so belongs to '$owner'"
it_log "ok: dpkg -i installed $pkg $(dpkg-query -W -f '${Version}' "$pkg")"

# A fresh cluster of the system's PostgreSQL 15, socket only, on a free port.
cluster=$work/cluster
mkdir "$cluster"
chown postgres: "$cluster"
port=$(it_free_port)
runuser -u postgres -- "$pgbin/initdb" -D "$cluster/data" -U postgres -A trust --no-locale -E UTF8 >"$work/initdb.log" ||
    { cat "$work/initdb.log" >&2; it_fail "initdb failed"; }
printf "listen_addresses = ''\nport = %s\nunix_socket_directories = '%s'\n" "$port" "$cluster" \
    >>"$cluster/data/postgresql.conf"
runuser -u postgres -- "$pgbin/pg_ctl" -D "$cluster/data" -l "$cluster/log" -w start >/dev/null ||
    { tail -n 20 "$cluster/log" >&2; it_fail "the cluster did not start"; }
q() { "$pgbin/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$cluster" -p "$port" -U postgres "$@"; }
it_log "a fresh cluster of $("$pgbin/postgres" --version) on port $port"

got=$(q -d postgres -c 'CREATE EXTENSION presence' \
    -c "SELECT extversion FROM pg_extension WHERE extname = 'presence'" \
    -c "SELECT presence.add('deb', 'c1', 'ann')" \
    -c "SELECT presence.touch('c1')" \
    -c "SELECT string_agg(channel || '/' || user_id, ',') FROM presence.members('deb')" | tr '\n' ' ')
[ "$got" = "$version t 1 c1/ann " ] ||
    it_fail "CREATE EXTENSION and a join gave '$got', expected '$version t 1 c1/ann '"
it_log "ok: CREATE EXTENSION presence ($version), a join, a touch and members() on the packaged extension"

q -d postgres -c 'CREATE DATABASE upgraded'
got=$(q -d upgraded -c "CREATE EXTENSION presence VERSION '0.1'" \
    -c "SELECT presence.add('deb', 'c1', 'ann')" -c 'ALTER EXTENSION presence UPDATE' \
    -c "SELECT extversion FROM pg_extension WHERE extname = 'presence'" \
    -c "SELECT presence.touch('c1')" | tr '\n' ' ')
[ "$got" = "t $version 1 " ] || it_fail "0.1, a join, ALTER EXTENSION UPDATE gave '$got', expected 't $version 1 '"
it_log "ok: CREATE EXTENSION presence VERSION '0.1' and ALTER EXTENSION presence UPDATE to $version from the package"
runuser -u postgres -- "$pgbin/pg_ctl" -D "$cluster/data" -m fast -w stop >/dev/null

# The package's autopkgtest: the regression and isolation suites against
# the installed package.
it_log "debian/tests/installcheck (autopkgtest) against the installed package"
(cd "$src" && ./debian/tests/installcheck) >"$work/installcheck.log" 2>&1 ||
    { cat "$work/installcheck.log" >&2; it_fail "debian/tests/installcheck failed (above)"; }
grep -E 'tests passed|All [0-9]+ tests' "$work/installcheck.log" | sed "s/^/$IT_NAME: installcheck: /"

dpkg_locked -r "$pkg" >/dev/null || it_fail "dpkg -r $pkg failed"
installed=false
[ ! -e "$pkglibdir/presence.so" ] || it_fail "dpkg -r left $pkglibdir/presence.so"
it_log "ok: dpkg -r removed the package and its files"
if [ -s "$backup" ]; then
    as_root tar -C / -xpf "$backup"
    backup=""
    it_log "put back the system's presence files ($(wc -l <"$work/system-files") paths, from make install)"
fi
it_log "ok: Debian package built, installed, used and removed in $((SECONDS - started))s"
