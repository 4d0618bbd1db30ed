#!/usr/bin/env bash
# The PGXN release archive: `make dist` in a clone of the committed tree
# makes presence-<version>.zip; its META.json has what PGXN requires and the
# same version as presence.control; unzipped, it builds and installs with
# PGXS (into a DESTDIR) with every SQL script the extension needs, the
# current version's one built from sql/presence.sql.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

it_ensure_build_deps
it_apt_install git unzip make
pg_config=$(command -v pg_config) || it_fail "no pg_config on PATH"
sha=$(git -C "$PRESENCE_REPO" rev-parse HEAD) || it_fail "$PRESENCE_REPO is not a git checkout: make dist needs git"

# A clone at this tree's commit (a worktree's path clones its repository).
git clone -q --no-checkout "$PRESENCE_REPO" "$IT_TMP/clone"
git -C "$IT_TMP/clone" checkout -q "$sha"
version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$IT_TMP/clone/presence.control")
make -s -C "$IT_TMP/clone" dist PG_CONFIG="$pg_config" >/dev/null
zip=$IT_TMP/clone/presence-$version.zip
[ -s "$zip" ] || it_fail "make dist did not make presence-$version.zip"
it_log "make dist: $(basename "$zip"), $(unzip -Z1 "$zip" | wc -l) entries, $(du -k "$zip" | cut -f1) kB (commit ${sha:0:12})"

# Everything under presence-<version>/; the sources in, nothing built.
unzip -Z1 "$zip" >"$IT_TMP/entries"
if grep -v "^presence-$version/" "$IT_TMP/entries"; then it_fail "entries outside presence-$version/ (above)"; fi
for f in META.json presence.control Makefile README.md sql/presence.sql sql/presence--0.1.sql \
    sql/presence--0.1--0.2.sql src/presence.c debian/control; do
    grep -qxF "presence-$version/$f" "$IT_TMP/entries" || it_fail "the archive lacks $f"
done
if grep -E "\.(o|so)$|/sql/presence--$version\.sql$" "$IT_TMP/entries"; then
    it_fail "the archive holds built files (above)"
fi

# META.json: the keys PGXN's meta spec 1.0.0 requires, versions that agree.
unzip -q "$zip" -d "$IT_TMP/unzipped"
python3 - "$IT_TMP/unzipped/presence-$version/META.json" "$version" <<'PY' || it_fail "META.json (above)"
import json, re, sys
meta = json.load(open(sys.argv[1], encoding="utf-8"))
version = sys.argv[2]
semver = version if version.count(".") == 2 else version + ".0"
problems = []
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
    if key not in meta:
        problems.append("no %r" % key)
if meta.get("name") != "presence":
    problems.append("name is %r" % meta.get("name"))
if meta.get("version") != semver:
    problems.append("version is %r, expected %r (presence.control: %s)" % (meta.get("version"), semver, version))
ext = meta.get("provides", {}).get("presence", {})
for key in ("file", "version"):
    if key not in ext:
        problems.append("provides.presence has no %r" % key)
if ext.get("version") != semver:
    problems.append("provides.presence.version is %r" % ext.get("version"))
if meta.get("meta-spec", {}).get("version") != "1.0.0":
    problems.append("meta-spec version is not 1.0.0")
for v in (meta.get("version", ""), ext.get("version", "")):
    if not re.fullmatch(r"\d+\.\d+\.\d+", v):
        problems.append("%r is not a semantic version" % v)
if problems:
    sys.exit("META.json: " + "; ".join(problems))
print("86_dist: META.json: %s %s, license %s, provides %s"
      % (meta["name"], meta["version"], meta["license"], ", ".join(meta["provides"])))
PY

# It builds and installs with PGXS from the unzipped archive alone.
src=$IT_TMP/unzipped/presence-$version
make -s -C "$src" PG_CONFIG="$pg_config" >"$IT_TMP/build.log" 2>&1 ||
    { cat "$IT_TMP/build.log" >&2; it_fail "the unzipped archive does not build"; }
make -s -C "$src" install DESTDIR="$IT_TMP/destdir" PG_CONFIG="$pg_config" >>"$IT_TMP/build.log" 2>&1 ||
    { cat "$IT_TMP/build.log" >&2; it_fail "make install DESTDIR=... of the unzipped archive failed"; }
ext_dir=$IT_TMP/destdir$("$pg_config" --sharedir)/extension
lib=$IT_TMP/destdir$("$pg_config" --pkglibdir)/presence.so
[ -f "$lib" ] || it_fail "no presence.so installed"
for f in presence.control "presence--$version.sql" presence--0.1.sql presence--0.1--0.2.sql; do
    [ -f "$ext_dir/$f" ] || it_fail "make install did not install $f"
done
cmp -s "$src/sql/presence.sql" "$ext_dir/presence--$version.sql" ||
    it_fail "presence--$version.sql is not sql/presence.sql"
it_log "ok: the archive builds and installs presence.so and $(ls "$ext_dir" | grep -c '^presence--') SQL scripts"
