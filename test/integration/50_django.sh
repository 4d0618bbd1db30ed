#!/usr/bin/env bash
# channels_presence (clients/django), about 1 minute:
#  1. pip installs it offline into a virtualenv (the one-line migration:
#     its directory in place of the django-channels-presence package);
#  2. its own tests (Django's runner, test_$PGDATABASE and a second
#     database for the shards test): signals sent by the calls themselves,
#     the ORM, the migrations taking over the original's tables, the
#     listener (election, failover, reconnect, shards, forged events);
#  3. the test project clients/django/tests_app, written like the apps that
#     use django-channels-presence, runs its tests against the installed
#     package, unchanged: with Django's runner, and with pytest-django and
#     pytest-asyncio.
# The browser test of the chat demo on two servers and redis is
# 52_django_redis.sh; pgbouncer is 51_django_pgbouncer.sh.
set -euo pipefail
# shellcheck source=test/integration/helpers.bash
. "$(dirname "$0")/helpers.bash"
# shellcheck source=examples/chat/lib.sh
. "$PRESENCE_REPO/examples/chat/lib.sh"
started=$SECONDS

chat_ensure_deps || it_fail "could not install ${CHAT_PACKAGES[*]}"
it_apt_install python3-venv python3-setuptools python3-pip python3-pytest-django python3-pytest-asyncio

# run_tests NAME DIR CMD... runs a Django test command in DIR, prints the
# tests that passed and fails the suite (printing the output) otherwise.
run_tests() {
    local name=$1 dir=$2 log
    shift 2
    log="$IT_TMP/$(tr -c 'A-Za-z0-9\n' _ <<<"$name").log"
    if ! (cd "$dir" && timeout 300 "$@" --noinput -v 2) >"$log" 2>&1; then
        cat "$log" >&2
        it_fail "$name: tests failed (output above)"
    fi
    grep -E ' \.\.\. ok$' "$log" | sed -E 's/^([a-z_0-9]+) \(([^)]*)\) \.\.\. ok$/\2 ok/; s/^/  /' || true
    it_log "$name: $(grep -E '^Ran ' "$log"): $(grep -E '^(OK|FAILED)' "$log")"
}

# --- 1. pip install, offline --------------------------------------------------

cp -r "$PRESENCE_REPO/clients/django" "$IT_TMP/src"
"$CHAT_PYTHON" -m venv --system-site-packages "$IT_TMP/venv"
if ! "$IT_TMP/venv/bin/pip" install --no-index --no-build-isolation "$IT_TMP/src" \
    >"$IT_TMP/pip.log" 2>&1; then
    cat "$IT_TMP/pip.log" >&2
    it_fail "pip install ./clients/django failed"
fi
where=$(cd / && "$IT_TMP/venv/bin/python" -c 'import channels_presence as c; print(c.__file__)')
case $where in
    "$IT_TMP/venv/"*) ;;
    *) it_fail "the venv imports channels_presence from $where, not from what pip installed" ;;
esac
it_log "pip install --no-index ./clients/django: $(grep -E '^Successfully installed' "$IT_TMP/pip.log")"

# --- 2. The package's own tests -------------------------------------------------

it_log "Django $("$CHAT_PYTHON" -c 'import django; print(django.get_version())'), Channels $("$CHAT_PYTHON" -c 'import channels; print(channels.__version__)')"
run_tests "clients/django tests" "$PRESENCE_REPO/clients/django" \
    env PYTHONPATH=. "$CHAT_PYTHON" -m django test --settings=tests.settings

# --- 3. The test project, against the installed package -------------------------

run_tests "tests_app (lobby)" "$PRESENCE_REPO/clients/django/tests_app" \
    "$IT_TMP/venv/bin/python" manage.py test lobby
# pytest-django with pytest-asyncio: a loop per test, and the test database
# must still drop at the end (the listener follows the loops).
if ! (cd "$PRESENCE_REPO/clients/django/tests_app" && timeout 300 "$IT_TMP/venv/bin/python" -m pytest \
    -p pytest_django --ds=legacyproject.settings -q -p no:cacheprovider lobby/test_pytest.py) \
    >"$IT_TMP/pytest.log" 2>&1; then
    cat "$IT_TMP/pytest.log" >&2
    it_fail "tests_app: pytest failed (output above)"
fi
it_log "tests_app with pytest-asyncio: $(tail -n 1 "$IT_TMP/pytest.log")"
grep -q "$IT_TMP/venv" <<<"$(cd "$PRESENCE_REPO/clients/django/tests_app" &&
    "$IT_TMP/venv/bin/python" -c 'import os; os.environ["DJANGO_SETTINGS_MODULE"] = "legacyproject.settings"
import django; django.setup(); import channels_presence; print(channels_presence.__file__)')" ||
    it_fail "the test project did not use the installed package"
it_log "ok in $((SECONDS - started))s"
