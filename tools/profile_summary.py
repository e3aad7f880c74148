#!/usr/bin/env python3
"""Sums one decode step of an ncu kernel-duration profile (tools/gpu_run.sh stage `profile`, or any
`ncu --csv --print-units base --metrics gpu__time_duration.sum` run of dsv4_cuda_bench).

A step is the launches from the last `embed_kernel` to the last sampling kernel after it (`sample_kernel`,
`sample_greedy_kernel`, ...: one step of the bench's layers plus embed/head and sampling). Prints the step's kernel count and total, the largest kernels, and the totals by kernel
name. Usage: tools/profile_summary.py PROFILE.csv[.xz] [--top N]
"""
import argparse
import collections
import csv
import lzma
import re
import signal
import sys


def read_rows(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt") as f:
        lines = [line for line in f if line.startswith('"')]
    if not lines:
        sys.exit(f"{path}: no ncu CSV rows")
    reader = csv.reader(lines)
    header = next(reader)
    try:
        ki, gi, mi, vi = (header.index(c) for c in ("Kernel Name", "Grid Size", "Metric Name", "Metric Value"))
    except ValueError as e:
        sys.exit(f"{path}: not an ncu CSV ({e})")
    rows = []
    for r in reader:
        if r[mi] == "gpu__time_duration.sum":
            rows.append((r[ki], r[gi], float(r[vi].replace(",", "")) / 1000.0))  # ns -> us
    return rows


def short_name(kernel):
    name = kernel.split("(")[0].replace("void ", "").replace("dsv4::", "").replace("cuda::", "")
    return name.split("<")[0]


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    rows = read_rows(a.profile)
    embeds = [i for i, r in enumerate(rows) if "embed_kernel" in r[0]]
    samples = [i for i, r in enumerate(rows) if re.search(r"\bsample\w*_kernel", r[0])]
    if not embeds or not samples or samples[-1] < embeds[-1]:
        sys.exit(f"{a.profile}: no complete step (embed_kernel ... sample*_kernel) among {len(rows)} launches")
    step = rows[embeds[-1]:samples[-1] + 1]
    print(f"{a.profile}: one step, {len(step)} kernels, {sum(r[2] for r in step):.1f} us")
    print(f"largest {min(a.top, len(step))}:")
    for name, grid, us in sorted(step, key=lambda r: -r[2])[:a.top]:
        print(f"  {us:9.2f} us  {name[:72]}  grid {grid}")
    by_name = collections.Counter()
    for name, _, us in step:
        by_name[short_name(name)] += us
    print("by kernel name:")
    for name, us in by_name.most_common():
        print(f"  {us:9.2f} us  {name}")


if __name__ == "__main__":
    main()
