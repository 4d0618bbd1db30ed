#!/usr/bin/env python3
"""Compare presence events received by a listener with the expected ones.

    events_match.py EXPECTED RECEIVED [ROOM_PREFIX]

EXPECTED and RECEIVED hold one JSON payload per line.  Lines of RECEIVED
whose "room" does not start with ROOM_PREFIX (default: every room) and
payloads that are not presence events (no "room" key) are ignored, so that
a test can share a channel with others and end with a marker of its own.

Each received event must have the first five keys of DESIGN.md section 6 in
their order (room, added, removed, updated, bulk_change), and the keys the
expected line gives must have exactly the expected values.  Keys that only
some configurations add after bulk_change (pruned, origin, seq, ts, sig)
may be present without being expected; any other extra key is an error.
Exit status 0 when the events match in number and order, 1 otherwise (with
the differences on stderr).
"""
import json
import sys

FIRST_KEYS = ["room", "added", "removed", "updated", "bulk_change"]
OPTIONAL_KEYS = {"pruned", "origin", "seq", "ts", "sig"}


def load(path, prefix):
    """Return the presence events in path whose room starts with prefix."""
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError as e:
                sys.exit("%s line %d is not JSON (%s): %r" % (path, n, e, line))
            if not isinstance(event, dict) or "room" not in event:
                continue
            if not str(event["room"]).startswith(prefix):
                continue
            events.append((n, line, event))
    return events


def problems(expected, got):
    """Return what is wrong with event got, compared with expected."""
    found = []
    if list(got)[:5] != FIRST_KEYS:
        found.append("the first five keys are %s" % list(got)[:5])
    for key, value in expected.items():
        if key not in got:
            found.append("no key %r" % key)
        elif got[key] != value:
            found.append("%r is %s, expected %s" % (key, json.dumps(got[key]), json.dumps(value)))
    extra = set(got) - set(expected) - OPTIONAL_KEYS
    if extra:
        found.append("unexpected keys %s" % sorted(extra))
    return found


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    prefix = sys.argv[3] if len(sys.argv) == 4 else ""
    expected = load(sys.argv[1], prefix)
    received = load(sys.argv[2], prefix)
    bad = 0
    for i in range(max(len(expected), len(received))):
        if i >= len(received):
            print("missing event %d: %s" % (i + 1, expected[i][1]), file=sys.stderr)
            bad += 1
            continue
        if i >= len(expected):
            print("unexpected event %d: %s" % (i + 1, received[i][1]), file=sys.stderr)
            bad += 1
            continue
        found = problems(expected[i][2], received[i][2])
        if found:
            print("event %d: %s\n  expected %s\n  received %s"
                  % (i + 1, "; ".join(found), expected[i][1], received[i][1]), file=sys.stderr)
            bad += 1
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
