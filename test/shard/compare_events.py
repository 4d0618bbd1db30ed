#!/usr/bin/env python3
"""Compare the events of one session on a single cluster and on shards.

    compare_events.py [--ignore KEY]... ROUTES REF SHARD0 [SHARD1 ...]

REF and SHARDi hold the payloads a LISTENer received, one per line, from
the single cluster and from shard i (test/tools/presence_listen).  ROUTES
holds "room<TAB>shard" lines: the shard the router sends each room to.
Lines that are not presence events (the test's end marker) are skipped.

Checks, for every room:
  - its events came from exactly the shard it is routed to (a room lives on
    one shard, so its events, user_joined / user_left included, are that
    shard's alone);
  - they equal the single cluster's, in the same order, except for rooms
    named conc_* (joined by several connections at once), where they are
    compared as a multiset.
Keys that differ between two clusters by design are left out: "ts" and
"sig" (when events are signed), and each KEY given with --ignore.  Exits 1 and prints the differences if any
check fails; prints a summary otherwise.
"""
import collections
import json
import sys

VOLATILE_KEYS = ("ts", "sig")
UNORDERED_PREFIX = "conc_"


def load(path, ignore):
    """Returns {room: [event, ...]} in arrival order, events as canonical JSON."""
    rooms = collections.OrderedDict()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            event = json.loads(line)
            if "room" not in event:
                continue
            for key in ignore:
                event.pop(key, None)
            # Keep the key order (it is part of the format), drop only spaces.
            rooms.setdefault(event["room"], []).append(
                json.dumps(event, ensure_ascii=False, separators=(",", ":")))
    return rooms


def main():
    args = sys.argv[1:]
    ignore = list(VOLATILE_KEYS)
    while args and args[0] == "--ignore" and len(args) > 1:
        ignore.append(args[1])
        args = args[2:]
    if len(args) < 3:
        sys.exit(__doc__)
    routes = {}
    with open(args[0], encoding="utf-8") as f:
        for line in f:
            room, shard = line.rstrip("\n").split("\t")
            routes[room] = int(shard)
    ref = load(args[1], ignore)
    shards = [load(p, ignore) for p in args[2:]]
    problems = []

    sharded = {}
    for i, events in enumerate(shards):
        for room, evs in events.items():
            if room in sharded:
                problems.append("room %r has events from shard %d and from another shard" % (room, i))
            if routes.get(room) != i:
                problems.append("room %r has events from shard %d but is routed to shard %s"
                                % (room, i, routes.get(room)))
            sharded[room] = evs

    for room in sorted(set(ref) | set(sharded)):
        a, b = ref.get(room, []), sharded.get(room, [])
        if room.startswith(UNORDERED_PREFIX):
            same = collections.Counter(a) == collections.Counter(b)
            how = "as a multiset"
        else:
            same = a == b
            how = "in order"
        if not same:
            lines = ["room %r: events differ (%s); single cluster %d, shards %d:" % (room, how, len(a), len(b))]
            lines += ["  - %s" % e for e in a]
            lines += ["  + %s" % e for e in b]
            problems.append("\n".join(lines))

    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    total = sum(len(v) for v in ref.values())
    per_shard = ", ".join("shard %d: %d events in %d rooms" % (i, sum(len(v) for v in s.values()), len(s))
                          for i, s in enumerate(shards))
    print("%d events in %d rooms equal (%s)" % (total, len(ref), per_shard))


if __name__ == "__main__":
    main()
