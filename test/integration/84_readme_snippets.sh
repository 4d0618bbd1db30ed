#!/usr/bin/env bash
# The README's listener snippets run exactly as printed, so they cannot rot.
#
# README.md marks each with <!-- snippet NAME: ... --> and <!-- end snippet
# -->; this test extracts the indented code between the markers into NAME
# unchanged (minus the 4-space indent), runs listen.py with Debian's
# psycopg2 and listen.mjs with node-postgres (`pg` from npm, installed by
# `npm ci` from test/tools/node/package-lock.json into a temp dir), both
# against a database named app (the snippets' database) with the PG*
# variables pointing at the test cluster, makes a join, an update, a leave
# and a bulk delete, and compares what each printed with what it must print.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"

started=$SECONDS
it_ensure_psycopg2
if ! command -v npm >/dev/null; then it_apt_install nodejs npm; fi
node --version >/dev/null || it_fail "node does not run"

# The snippets connect to the database app.
export PGDATABASE=app
created_app=false
it_on_exit() {
    local pid
    for pid in "${snippet_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if "$created_app"; then dropdb --if-exists app >/dev/null 2>&1 || true; fi
}
snippet_pids=()
[ -z "$(psql -X -At -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'app'")" ] ||
    it_fail "the test cluster already has a database app"
createdb app
created_app=true
it_psql -c 'CREATE EXTENSION presence'

# extract NAME prints the snippet NAME of README.md, or fails.
extract() {
    awk -v name="$1" '
        $0 ~ "^<!-- snippet " name ":" { inside = 1; next }
        inside && /^<!-- end snippet -->/ { inside = 0; found = 1; exit }
        inside { print }
        END { exit found ? 0 : 1 }
    ' "$PRESENCE_REPO/README.md" | sed -e 's/^    //' -e '/./,$!d' | sed -e ':a' -e '/^\n*$/{$d;N;ba' -e '}' ||
        it_fail "README.md has no snippet $1 (<!-- snippet $1: ... --> ... <!-- end snippet -->)"
}
mkdir "$IT_TMP/snippets"
extract listen.py >"$IT_TMP/snippets/listen.py"
extract listen.mjs >"$IT_TMP/snippets/listen.mjs"
for f in listen.py listen.mjs; do
    [ -s "$IT_TMP/snippets/$f" ] || it_fail "the snippet $f is empty"
    it_log "snippet $f: $(wc -l <"$IT_TMP/snippets/$f") lines from README.md"
done

# node-postgres, at the version of the committed lockfile, next to listen.mjs
# (Node resolves `import pg from 'pg'` from the script's directory).
cp "$PRESENCE_REPO/test/tools/node/package.json" "$PRESENCE_REPO/test/tools/node/package-lock.json" \
    "$IT_TMP/snippets/"
(cd "$IT_TMP/snippets" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1) ||
    { cat "$IT_TMP/snippets/npm.log" >&2; it_fail "npm ci of test/tools/node failed"; }
it_log "pg $(node -p "require('$IT_TMP/snippets/node_modules/pg/package.json').version") from npm (node $(node --version))"

# Run both. Python's output to a pipe is block-buffered: PYTHONUNBUFFERED
# makes each print() reach the file at once (the snippet is unchanged).
(cd "$IT_TMP/snippets" && PYTHONUNBUFFERED=1 exec /usr/bin/python3 listen.py) \
    >"$IT_TMP/python.out" 2>"$IT_TMP/python.err" &
snippet_pids+=($!)
(cd "$IT_TMP/snippets" && exec node listen.mjs) >"$IT_TMP/node.out" 2>"$IT_TMP/node.err" &
snippet_pids+=($!)

# Both are listening once two sessions of database app sit after LISTEN.
for ((i = 0; i < 100; i++)); do
    n=$(it_value "SELECT count(*) FROM pg_stat_activity
                   WHERE datname = 'app' AND query = 'LISTEN presence' AND state = 'idle'")
    [ "$n" = 2 ] && break
    for pid in "${snippet_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        cat "$IT_TMP/python.err" "$IT_TMP/node.err" >&2
        it_fail "a snippet exited before listening (messages above)"
    done
    sleep 0.1
done
[ "$n" = 2 ] || { cat "$IT_TMP/python.err" "$IT_TMP/node.err" >&2; it_fail "$n of 2 snippets are listening"; }
it_log "both snippets are listening"

it_psql -o /dev/null <<'SQL'
SELECT presence.add('lobby', 'c1', '42');
SELECT presence.update('lobby', 'c1', '{"status": "away"}');
SELECT presence.remove('lobby', 'c1');
SELECT presence.add('bulk', 'b1', 'u1');
SELECT presence.add('bulk', 'b2');
DELETE FROM presence.presences WHERE room = 'bulk';
SQL

cat >"$IT_TMP/python.expected" <<'EOF'
lobby {'channel': 'c1', 'user_id': '42', 'meta': None, 'user_joined': True} None False
lobby None None False
lobby None {'channel': 'c1', 'user_id': '42', 'meta': {'status': 'away'}, 'user_left': True} False
bulk {'channel': 'b1', 'user_id': 'u1', 'meta': None, 'user_joined': True} None False
bulk {'channel': 'b2', 'user_id': None, 'meta': None, 'user_joined': False} None False
bulk None None True
EOF
cat >"$IT_TMP/node.expected" <<'EOF'
lobby { channel: 'c1', user_id: '42', meta: null, user_joined: true } null false
lobby null null false
lobby null {
  channel: 'c1',
  user_id: '42',
  meta: { status: 'away' },
  user_left: true
} false
bulk { channel: 'b1', user_id: 'u1', meta: null, user_joined: true } null false
bulk { channel: 'b2', user_id: null, meta: null, user_joined: false } null false
bulk null null true
EOF

for lang in python node; do
    want=$(wc -l <"$IT_TMP/$lang.expected")
    for ((i = 0; i < 100; i++)); do
        [ "$(wc -l <"$IT_TMP/$lang.out")" -ge "$want" ] && break
        sleep 0.1
    done
    diff -u "$IT_TMP/$lang.expected" "$IT_TMP/$lang.out" ||
        { cat "$IT_TMP/$lang.err" >&2; it_fail "the README's $lang snippet printed something else (diff above)"; }
    it_log "ok: the $lang snippet printed the 6 events as expected"
done
it_log "ok: the README's listener snippets run as printed ($((SECONDS - started))s)"
