#!/usr/bin/python3
"""Check the signatures of presence events and print them without ts/sig.

usage: verify_events.py FILE [--unsigned-ok]

FILE holds one NOTIFY payload per line (as test/tools/presence_listen
writes them).  The key comes from presence.event_key() on the database
the libpq environment names (PGHOST, PGPORT, PGDATABASE, PGUSER).  A
payload is a presence event when it is a JSON object whose first key is
"room"; each must end with ,"ts":N,"sig":"<hex>"} where sig is
HMAC-SHA256(key, every byte before ,"sig":"), and ts must be within an
hour of now.  Every line is printed, presence events with ,"ts":..,"sig":..
removed, so that a test can compare them with the payloads it expects.
Exits 1 (after printing the reasons to stderr) if any event is unsigned
(unless --unsigned-ok), forged or stale.
"""
import hashlib
import hmac
import json
import re
import sys
import time

import psycopg2

TRAILER = re.compile(r',"ts":(\d+),"sig":"([0-9a-f]{64})"\}$')


def main():
    path = sys.argv[1]
    unsigned_ok = "--unsigned-ok" in sys.argv[2:]
    conn = psycopg2.connect("")
    cur = conn.cursor()
    cur.execute("SELECT presence.event_key()")
    key = bytes.fromhex(cur.fetchone()[0])
    conn.close()

    bad = 0
    now_us = time.time() * 1e6
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            payload = line.rstrip("\n")
            try:
                is_event = next(iter(json.loads(payload)), None) == "room"
            except (ValueError, TypeError):
                is_event = False
            if not is_event:
                print(payload)
                continue
            m = TRAILER.search(payload)
            if m is None:
                if not unsigned_ok:
                    print("line %d: unsigned event: %s" % (n, payload), file=sys.stderr)
                    bad += 1
                print(payload)
                continue
            signed = payload[: payload.rindex(',"sig":"')].encode("utf-8")
            want = hmac.new(key, signed, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, m.group(2)):
                print("line %d: forged event (bad sig): %s" % (n, payload), file=sys.stderr)
                bad += 1
            elif abs(int(m.group(1)) - now_us) > 3600e6:
                print("line %d: stale event (ts): %s" % (n, payload), file=sys.stderr)
                bad += 1
            print(payload[: m.start()] + "}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
