#!/usr/bin/python3
"""Peak private memory of the backend that runs one SQL statement.

usage: peak_memory.py SQL [SETUP_SQL]

Connects (libpq environment: PGHOST, PGPORT, PGDATABASE, PGUSER), runs
SETUP_SQL if given, resets the backend's peak RSS (writing 5 to
/proc/PID/clear_refs, which needs root or the server's OS user), runs SQL
and prints one line:

    peak_private_mb=<MB> result=<first value of the first row>

The private peak is VmHWM minus the file-backed and shared pages resident
after the statement (shared buffers and the binary are not the backend's
own memory).  A sampler reading RssAnon every 10 ms covers systems where
clear_refs cannot be written; the larger of the two figures is printed.
"""
import sys
import threading
import time

import psycopg2


def status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            parts = value.split()
            if parts and parts[-1] == "kB":
                fields[key] = int(parts[0])
    return fields


def main():
    sql = sys.argv[1]
    setup = sys.argv[2] if len(sys.argv) > 2 else None
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    if setup:
        cur.execute(setup)
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]

    reset = True
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        reset = False

    sampled = [status(pid).get("RssAnon", 0)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                sampled[0] = max(sampled[0], status(pid).get("RssAnon", 0))
            except OSError:
                return
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        cur.execute(sql)
        result = cur.fetchone()[0] if cur.description else None
    finally:
        done.set()
        sampler.join()

    peak_kb = sampled[0]
    if reset:
        st = status(pid)
        peak_kb = max(peak_kb, st["VmHWM"] - st.get("RssFile", 0) - st.get("RssShmem", 0))
    print("peak_private_mb=%.1f result=%s" % (peak_kb / 1024.0, result))


if __name__ == "__main__":
    main()
