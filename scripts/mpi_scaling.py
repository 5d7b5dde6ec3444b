#!/usr/bin/env python3
"""mpi_scaling.py: projects data-parallel scaling from step times and gradient sizes.

    build/bench/tg-bench --grad-sizes > sizes.txt
    build/bench/tg-bench > steps.txt                     # one rank's step times (optional)
    scripts/mpi_scaling.py sizes.txt [steps.txt] [--latency-us 5] [--ranks 8,64,256] [--gbits 25,100]

Ring all-reduce of B bytes over p ranks on links of bandwidth W bytes/s and latency a:

    t_comm = 2 (p - 1) / p * B / W + 2 (p - 1) * a

With the per-rank batch fixed (weak scaling, as Horovod's figures are), a step on p ranks
takes the one-rank step t_step plus the communication the backward walk did not hide. The
efficiency printed assumes none hidden:

    efficiency = t_step / (t_step + t_comm)

which is close for a recurrent stack: its weights are read at every time step, so their
gradients are final only near the end of the backward walk and little can overlap (the
output layer's bucket). An encoder-decoder hides more: its decoder's gradients are final
when the walk enters the encoder. Without step times it prints, instead, the step time each model needs for 90% efficiency
with no overlap: 9 t_comm. Prints Markdown tables (docs/distributed.md).
"""
import argparse
import re
import sys


def read_sizes(path):
    sizes = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                sizes[parts[0]] = int(parts[1])
    if not sizes:
        sys.exit(f"mpi_scaling.py: no 'CONFIG BYTES' lines in {path} (make it with tg-bench --grad-sizes)")
    return sizes


def read_step_times(path):
    """tg-bench lines ("lm-lstm-small threads=1 12.34 ms/step ...") or "CONFIG MS" lines, in ms."""
    times = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = re.match(r"\s*(\S+)\s+(?:\S+=\S+\s+)*([0-9.]+)\s*(?:ms/step)?\s*(?:$|\s)", line)
            if m:
                times[m.group(1)] = float(m.group(2))
    return times


def comm_seconds(nbytes, ranks, gbits, latency_s):
    bandwidth = gbits * 1e9 / 8  # bytes/s
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + 2 * (ranks - 1) * latency_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sizes")
    ap.add_argument("step_times", nargs="?")
    ap.add_argument("--latency-us", type=float, default=5.0, help="per-message latency (default 5 us)")
    ap.add_argument("--ranks", default="8,64,256")
    ap.add_argument("--gbits", default="25,100")
    a = ap.parse_args()
    sizes = read_sizes(a.sizes)
    times = read_step_times(a.step_times) if a.step_times else {}
    ranks = [int(r) for r in a.ranks.split(",")]
    links = [float(g) for g in a.gbits.split(",")]
    cols = [(p, g) for g in links for p in ranks]
    head = "| model | gradient MB | " + " | ".join(f"{p} @ {g:g} Gb/s" for p, g in cols) + " |"
    rule = "|---|---:|" + "---:|" * len(cols)

    print(f"All-reduce time per step, ms (ring model, latency {a.latency_us:g} us):\n")
    print(head)
    print(rule)
    for name, nbytes in sizes.items():
        cells = [f"{comm_seconds(nbytes, p, g, a.latency_us * 1e-6) * 1e3:.2f}" for p, g in cols]
        print(f"| {name} | {nbytes / 1e6:.2f} | " + " | ".join(cells) + " |")

    if not times:
        print("\nStep time (ms) needed for 90% efficiency without overlap (9 x the all-reduce):\n")
        print(head)
        print(rule)
        for name, nbytes in sizes.items():
            cells = [f"{9 * comm_seconds(nbytes, p, g, a.latency_us * 1e-6) * 1e3:.1f}" for p, g in cols]
            print(f"| {name} | {nbytes / 1e6:.2f} | " + " | ".join(cells) + " |")
        return
    print("\nScaling efficiency, no overlap:\n")
    print(head.replace("gradient MB", "step ms"))
    print(rule)
    for name, nbytes in sizes.items():
        if name not in times:
            print(f"| {name} | ? | " + " | ".join("?" for _ in cols) + " |")
            continue
        step = times[name] * 1e-3
        cells = []
        for p, g in cols:
            c = comm_seconds(nbytes, p, g, a.latency_us * 1e-6)
            cells.append(f"{step / (step + c):.0%}")
        print(f"| {name} | {times[name]:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
