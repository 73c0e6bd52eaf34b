"""The supermarket model as a Markov chain, independently of the simulator: a reference for
scenarios/published/supermarket*.yaml at a finite number of servers.

n servers, Poisson arrivals at rate load x n, exponential service of mean 1, each arrival
joining the shortest of d servers sampled uniformly with replacement (ties: the first drawn).
Only the queue lengths are simulated, one event (an arrival or a departure) at a time; the mean
time in the system is the time-averaged number in the system after the warm-up divided by the
arrival rate (Little's law). Prints the mean and its standard error over the seeds:

    python3 tools/supermarket_chain.py --servers 100 --load 0.99 --choices 2 \\
        --length 50000 --warmup 2000 --seeds 8
"""

from __future__ import annotations

import argparse
import random
import statistics


def mean_time_in_system(
    servers: int, load: float, choices: int, length: float, warmup: float, seed: int
) -> float:
    """One run from empty queues: the mean time in the system over ``warmup``..``length``."""
    rng = random.Random(seed)
    queue = [0] * servers
    busy: list[int] = []  # the servers with a queue, in any order (a departure picks one)
    where = [-1] * servers  # each busy server's index in ``busy``
    in_system = 0
    area = 0.0  # integral of the number in the system over the measured window
    arrivals = load * servers
    now = 0.0
    while now < length:
        rate = arrivals + len(busy)
        step = rng.expovariate(rate)
        if now + step > warmup:
            area += in_system * (min(now + step, length) - max(now, warmup))
        now += step
        if rng.random() * rate < arrivals:
            best = int(rng.random() * servers)
            for _ in range(choices - 1):
                other = int(rng.random() * servers)
                if queue[other] < queue[best]:
                    best = other
            if queue[best] == 0:
                where[best] = len(busy)
                busy.append(best)
            queue[best] += 1
            in_system += 1
        else:
            index = int(rng.random() * len(busy))
            server = busy[index]
            queue[server] -= 1
            in_system -= 1
            if queue[server] == 0:
                last = busy.pop()
                if last != server:
                    busy[index] = last
                    where[last] = index
                where[server] = -1
    return area / (length - warmup) / arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--load", type=float, default=0.99)
    parser.add_argument("--choices", type=int, default=2)
    parser.add_argument("--length", type=float, default=50000.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2000.0, help="seconds left out")
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    if not (0 < args.load < 1 and args.servers >= 1 and args.choices >= 1 and args.seeds >= 2):
        parser.error("need 0 < load < 1, servers >= 1, choices >= 1, seeds >= 2")
    if not 0 <= args.warmup < args.length:
        parser.error("need 0 <= warmup < length")
    means = [
        mean_time_in_system(args.servers, args.load, args.choices, args.length, args.warmup, seed)
        for seed in range(1, args.seeds + 1)
    ]
    error = statistics.stdev(means) / len(means) ** 0.5
    runs = " ".join(f"{m:.3f}" for m in means)
    print(
        f"servers={args.servers} load={args.load} choices={args.choices} length={args.length:g}s"
        f" warmup={args.warmup:g}s: mean {statistics.mean(means):.3f}"
        f" +- {error:.3f} (runs: {runs})"
    )


if __name__ == "__main__":
    main()
