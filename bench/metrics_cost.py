"""What Prometheus metrics cost on the fan-out: chatbus serve with metrics on
against the same server with them off (``metrics.enabled = false``, which
counts nothing), in one run, alternating.

Each pair runs fan-out scenario 5 (100 clients, 10 of them sending, at one
fixed rate, so both servers do the same work) and compares the server's CPU
per delivery; then scenario 1 (the highest rate 100 clients keep up with)
once each. Prints the figures and the on/off ratios; the target is metrics
costing under 5 %. Run: ``.venv/bin/python bench/metrics_cost.py [--pairs N] [--compression deflate]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import fanout


def trial(
    load: fanout.Load, opts: fanout.Options, metrics: bool, compression: str, scenario: int
) -> fanout.TrialResult:
    env = {"CHATBUS_METRICS__ENABLED": "true" if metrics else "false"}
    server = fanout.Server("chatbus", compression, max_connections=1000, extra_env=env)
    try:
        if scenario == 5:
            return fanout.same_load(load, server, opts)
        return fanout.search_max_rate(load, server, opts, None, [])
    finally:
        load.close()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="on/off pairs of scenario 5 (default 5)")
    parser.add_argument("--compression", choices=("none", "deflate"), default="deflate", help="default deflate")
    parser.add_argument("--rate", type=float, default=300.0, help="scenario 5 input rate, msg/s (default 300)")
    args = parser.parse_args(argv)
    opts = fanout.Options(s5_rate=args.rate, s5_seconds=5.0)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    with fanout.workers_running(opts.workers) as workers:
        load = fanout.Load(workers)
        for pair in range(args.pairs):
            for metrics in (pair % 2 == 0, pair % 2 != 0):  # alternate which goes first
                result = trial(load, opts, metrics, args.compression, 5)
                if not result.complete or result.lost or result.duplicated:
                    raise SystemExit(
                        f"scenario 5 went wrong with metrics {'on' if metrics else 'off'}: {result.summary()}"
                    )
                cpu[metrics].append(result.server_cpu_us)
        best = {metrics: trial(load, opts, metrics, args.compression, 1) for metrics in (True, False)}
    on, off = statistics.median(cpu[True]), statistics.median(cpu[False])
    print(f"fan-out, compression {args.compression}, scenario 5 at {args.rate:g} msg/s, {args.pairs} pairs:")
    print(f"  server CPU per delivery, median: metrics on {on:.2f} us, off {off:.2f} us, on/off {on / off:.3f}")
    print(
        f"  each pair (on, off): {', '.join(f'({a:.2f}, {b:.2f})' for a, b in zip(cpu[True], cpu[False], strict=True))}"
    )
    rate_on, rate_off = best[True].deliveries_per_s, best[False].deliveries_per_s
    print(
        f"scenario 1, highest rate kept up with: on {rate_on:,.0f} deliveries/s, off {rate_off:,.0f}, on/off {rate_on / rate_off:.3f}"
    )
    print(f"target: metrics cost under 5 % of CPU per delivery -> {'met' if on / off < 1.05 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
