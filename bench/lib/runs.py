#!/usr/bin/env python3
"""runs.py N OUT -- COMMAND...: runs COMMAND N times (stdout to OUT, the last
run's), prints "MEDIAN_SECONDS PEAK_RSS_KB RUNS" (peak over the runs, from wait4;
fewer runs when they take over 30 s in all).
Exits 1 if a run fails."""
import os
import statistics
import subprocess
import sys
import time


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    walls, rss = [], 0
    for _ in range(n):
        if walls and sum(walls) > 30:
            break  # slow: fewer runs rather than minutes of them
        with open(out, "wb") as f:
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdout=f)
            _, status, ru = os.wait4(p.pid, 0)
            walls.append(time.monotonic() - t0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.stderr.write("runs.py: %s exited %d\n" % (" ".join(cmd), p.returncode))
            sys.exit(1)
        rss = max(rss, ru.ru_maxrss)
    print("%.4f %d %d" % (statistics.median(walls), rss, len(walls)))


main()
