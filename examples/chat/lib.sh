# shellcheck shell=bash
# Helpers of the chat demo, sourced by examples/chat/run.sh and
# test/integration/50_django.sh: install Debian's Django, Channels, Daphne
# and psycopg2 (and Chromium and Node.js for the browser test), and start a
# Daphne server of the demo.  Debian's Python packages are seen only by
# /usr/bin/python3, which is what CHAT_PYTHON names.

CHAT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHAT_PYTHON=/usr/bin/python3
CHAT_PACKAGES=(python3-django python3-django-channels python3-daphne python3-psycopg2)

# chat_ensure_deps [--browser] installs the missing packages with apt
# (as root, or with sudo); --browser adds chromium, and nodejs and npm
# when there is no node.
chat_ensure_deps() {
    local pkg missing=() wanted=("${CHAT_PACKAGES[@]}")
    if [ "${1-}" = --browser ]; then
        wanted+=(chromium)
        command -v node >/dev/null && command -v npm >/dev/null || wanted+=(nodejs npm)
    fi
    for pkg in "${wanted[@]}"; do
        dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    printf '==> installing %s\n' "${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}

# chat_manage ARGS... runs the demo's manage.py.
chat_manage() { "$CHAT_PYTHON" "$CHAT_DIR/manage.py" "$@"; }

# chat_start_daphne PORT LOG starts Daphne serving the demo on
# 127.0.0.1:PORT in the background (CHAT_DAPHNE_PID) and waits until it
# answers (at most 20 s).  The database and CHAT_* settings come from the
# environment (see chat/settings.py).  Daphne's keepalive pings would close
# a connection that went silent after 20 + 30 s (--ping-interval,
# --ping-timeout); they are made 5 minutes so that what the demo shows for
# such a connection is presence's pruning.
chat_start_daphne() {
    local port=$1 log=$2 i
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        printf 'ERROR: port %s of 127.0.0.1 is already in use\n' "$port" >&2
        return 1
    fi
    (cd "$CHAT_DIR" && DJANGO_SETTINGS_MODULE=chat.settings PYTHONPATH="$CHAT_DIR" \
        exec "$CHAT_PYTHON" -m daphne -b 127.0.0.1 -p "$port" \
            --ping-interval 300 --ping-timeout 300 chat.asgi:application) >"$log" 2>&1 &
    CHAT_DAPHNE_PID=$!
    for ((i = 0; i < 200; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$CHAT_DAPHNE_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

# chat_free_port prints a TCP port of 127.0.0.1 that nothing listens on.
chat_free_port() {
    "$CHAT_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
