"""Several chatbus nodes on Redis, side by side with one node on SQLite (issue 14).

    .venv/bin/python bench/cluster.py              # every configuration at 100, 300 and 1000 msg/s (3 minutes)
    .venv/bin/python bench/cluster.py --quick      # shorter trials, one rate

In one run, on this machine, it starts Debian's redis-server (append-only
file on, ``appendfsync everysec``, as the README asks of a deployment) and,
one configuration after the other, real ``chatbus serve`` processes exactly
as users start them:

- ``sqlite-1``: one node on its SQLite file, the default (the baseline);
- ``redis-1``, ``redis-2``, ``redis-3``: one, two and three nodes sharing
  the Redis engine (``CHATBUS_ENGINE__URL``), each on its own port;
- ``redis-1-nolimit``: one Redis node with the rate limiter off, to see what
  counting each person's allowance in Redis costs.

K WebSocket clients (``bench/loadgen.py``, in separate processes) are spread
over the nodes (client i on node i mod N), and S of them (spread the same
way) send at a fixed offered rate: message k leaves sender k mod S at
t0 + k / rate. Every client must receive every message exactly once, in one
order; the ids a message got must be the same everywhere. Figures, per
configuration and rate: deliveries/s, latency p50/p99/max from the send to
the bytes reaching the receiving client's socket (across nodes: a sender on
node a, receivers on a, b and c), CPU per delivery of all nodes together,
each node's and redis-server's share of a core, and ratios against
``sqlite-1``.

Where the time goes is measured beside the trials, from this process with the
Redis engine itself on a key prefix of its own: the round trip of a ``PING``
and of an ``append`` (the script that numbers, stores and publishes a
message), idle and while the load runs, and the time from an ``append``'s
start to the message's arrival through a subscription (the pub/sub hop on top
of the append). The figures are printed and written as JSON
(``bench/results/cluster.json``, ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fanout
import loadgen
import probes
import redis as redis_client

__all__ = ["Options", "main"]

CONFIGS = ("sqlite-1", "redis-1", "redis-1-nolimit", "redis-2", "redis-3")
NODE_NAMES = "abcdefgh"
REDIS_SERVER = Path("/usr/bin/redis-server")


@dataclass
class Options:
    configs: tuple[str, ...] = CONFIGS
    rates: tuple[float, ...] = (100.0, 300.0, 1000.0)
    clients: int = 100
    senders: int = 12
    seconds: float = 5.0
    drain: float = 10.0
    workers: int = 1
    read_quantum: float = 0.002
    appendonly: bool = True
    json_path: Path = HERE / "results" / "cluster.json"
    keep_logs: bool = False


# redis-server ------------------------------------------------------------------
class Redis:
    """Debian's redis-server on a free loopback port, its files in a scratch folder."""

    def __init__(self, appendonly: bool) -> None:
        if not REDIS_SERVER.exists():
            raise fanout.BenchError(f"{REDIS_SERVER} not found: apt-get install redis-server")
        self.folder = Path(tempfile.mkdtemp(prefix="cluster-redis-"))
        self.port = fanout.free_port()
        self.process = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if appendonly else "no", "--appendfsync", "everysec",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=loadgen.die_with_parent,  # noqa: PLW1509 - the coordinator is single-threaded
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not probes.redis_answers(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise fanout.BenchError("redis-server did not start")
            time.sleep(0.05)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cpu_seconds(self) -> float:
        """redis-server's CPU so far, from its own ``INFO cpu`` (microseconds, finer than /proc's ticks)."""
        with redis_client.Redis(port=self.port) as client:
            info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def reset_stats(self) -> None:
        with redis_client.Redis(port=self.port) as client:
            client.config_resetstat()

    def command_stats(self) -> dict[str, tuple[int, int]]:
        """Commands run since :meth:`reset_stats` (those of scripts included): name to (calls, microseconds)."""
        with redis_client.Redis(port=self.port) as client:
            info = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for name, v in info.items()}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# one configuration ---------------------------------------------------------------
@dataclass
class Run:
    """One configuration's figures at one rate."""

    config: str
    nodes: int
    rate: float
    trial: fanout.TrialResult
    node_cpu_share: list[float]  # each node's CPU during the trial, in cores
    redis_cpu_share: float  # cores
    redis_us_per_message: float
    node_us_per_delivery: float
    machine_busy: float  # all processes' CPU (nodes, redis, generator) over the cores there are
    under_load: dict[str, float] = field(default_factory=dict)  # append round trips during the trial
    #: redis-server's commands per chat message: name to (calls, microseconds of Redis' CPU)
    redis_commands: dict[str, tuple[float, float]] = field(default_factory=dict)


def start_nodes(config: str, redis: Redis, db: int, opts: Options) -> list[fanout.Server]:
    """The ``chatbus serve`` processes of ``config``, each listening."""
    kind, count = config.split("-")[0], int(config.split("-")[1])
    env: dict[str, str] = {}
    if kind == "redis":
        env = {"CHATBUS_ENGINE__URL": redis.url(db), "CHATBUS_ENGINE__PREFIX": f"bench{db}"}
    if config.endswith("-nolimit"):
        env["CHATBUS_PLUGINS__DISABLE"] = "ratelimit"
    nodes = []
    try:
        for i in range(count):
            extra = {**env, "CHATBUS_ENGINE__NODE": NODE_NAMES[i]} if kind == "redis" else env
            nodes.append(fanout.Server("chatbus", "none", max_connections=opts.clients + 100, extra_env=extra))
    except BaseException:
        for node in nodes:
            node.stop(keep=opts.keep_logs)
        raise
    return nodes


def trial(
    load: fanout.Load, nodes: list[fanout.Server], redis: Redis, opts: Options, rate: float, *, on_redis: bool
) -> Run:
    """Message k from client k % S at t0 + k / rate; every client must get all of them."""
    workers = load.workers
    load.trials += 1
    count = max(1, round(rate * opts.seconds))
    t0 = time.time() + 0.3
    parts = load._split(range(opts.clients))
    args = [
        {
            "tag": f"c{load.trials}", "count": count, "senders": opts.senders, "rate": rate, "t0": t0,
            "mine": {s: s for s in range(opts.senders) if s % workers.count == w},
            "receivers": parts[w], "drain": opts.drain, "quantum": opts.read_quantum,
        }
        for w in range(workers.count)
    ]  # fmt: skip
    pids = [node.process.pid for node in nodes] + workers.pids
    before = {pid: probes.cpu_seconds(pid) for pid in pids}
    redis_before = redis.cpu_seconds()
    redis.reset_stats()
    started = time.monotonic()
    probe = probes.LoadProbe(redis.url(15)) if on_redis else None
    try:
        replies = workers.call("trial", args, count / rate + opts.drain + 60.0)
    finally:
        under_load = probe.stop() if probe is not None else {}
    elapsed = time.monotonic() - started
    spent = {pid: probes.cpu_seconds(pid) - before[pid] for pid in pids}
    redis_cpu = redis.cpu_seconds() - redis_before
    commands = {name: (calls / count, usec / count) for name, (calls, usec) in redis.command_stats().items()}
    node_cpu = [spent[node.process.pid] for node in nodes]
    result = fanout.TrialResult.merge(rate, count, opts.clients, opts.senders, t0, replies, sum(node_cpu))
    return Run(
        config="",
        nodes=len(nodes),
        rate=rate,
        trial=result,
        node_cpu_share=[cpu / elapsed for cpu in node_cpu],
        redis_cpu_share=redis_cpu / elapsed,
        redis_us_per_message=redis_cpu / count * 1e6,
        node_us_per_delivery=result.server_cpu_us,
        machine_busy=(sum(spent.values()) + redis_cpu) / elapsed / (os.cpu_count() or 1),
        under_load=under_load,
        redis_commands=commands if on_redis else {},
    )


def run_config(load: fanout.Load, config: str, redis: Redis, db: int, opts: Options) -> list[Run]:
    nodes = start_nodes(config, redis, db, opts)
    runs: list[Run] = []
    try:
        for index, node in enumerate(nodes):
            mine = [i for i in range(opts.clients) if i % len(nodes) == index]
            signed = load.connect(node, mine, timeout=60.0)
            if signed["failed"]:
                raise fanout.BenchError(f"{config}: {signed['failed']} clients could not sign in: {signed['failures']}")
        for node in nodes:
            node.settle()
        for rate in opts.rates:
            run = trial(load, nodes, redis, opts, rate, on_redis=config.startswith("redis"))
            run.config = config
            fanout.log(f"  {config:<16} {run.trial.summary()}")
            runs.append(run)
        load.close()
    finally:
        for node in nodes:
            if not node.alive():
                fanout.log(f"  {config}: a node exited:\n{node.tail()}")
            node.stop(keep=opts.keep_logs)
    return runs


# the report ----------------------------------------------------------------------
def ratio(value: float, base: float) -> float:
    return value / base if base and not math.isnan(base) and not math.isnan(value) else math.nan


def render(runs: list[Run], idle: dict[str, float], opts: Options) -> str:
    title = (
        f"{opts.clients} clients spread over the nodes, {opts.senders} of them sending, {opts.seconds:g} s per trial; "
        f"ratios against sqlite-1 at the same rate"
    )
    header = (
        f"{'config':<16} {'msg/s':>6} {'deliv/s':>8} {'x':>5} {'p50 ms':>7} {'p99 ms':>8} {'x':>6} "
        f"{'max ms':>7} {'node us/dl':>10} {'x':>5} {'nodes, cores':>18} {'redis':>6} {'us/msg':>7} "
        f"{'busy':>5} {'append p50/p99 ms':>18}  verdict"
    )
    lines = [title, header]
    base = {run.rate: run for run in runs if run.config == "sqlite-1"}
    for run in runs:
        t, b = run.trial, base.get(run.rate)
        under = run.under_load
        append = f"{under['append_p50_ms']:.2f}/{under['append_p99_ms']:.2f}" if under.get("samples") else "-"
        verdict = "keeps up" if t.keeps_up() else ("late" if t.correct else "INCOMPLETE")
        if not t.correct:
            verdict += f" (lost {t.lost}, doubled {t.duplicated}, disorder {t.out_of_order}; {t.first_problem})"
        shares = "+".join(f"{share:.2f}" for share in run.node_cpu_share)
        lines.append(
            f"{run.config:<16} {run.rate:>6.0f} {t.deliveries_per_s:>8.0f} "
            f"{ratio(t.deliveries_per_s, b.trial.deliveries_per_s if b else math.nan):>5.2f} "
            f"{t.p50_ms:>7.2f} {t.p99_ms:>8.2f} {ratio(t.p99_ms, b.trial.p99_ms if b else math.nan):>6.2f} "
            f"{t.max_ms:>7.1f} {run.node_us_per_delivery:>10.2f} "
            f"{ratio(run.node_us_per_delivery, b.node_us_per_delivery if b else math.nan):>5.2f} {shares:>18} "
            f"{run.redis_cpu_share:>6.2f} {run.redis_us_per_message:>7.0f} {run.machine_busy:>5.0%} {append:>18}  "
            f"{verdict}"
        )
    for run in runs:
        if run.redis_commands and run.rate == max(opts.rates):
            lines.append(f"{run.config} at {run.rate:g} msg/s, redis-server per chat message: " + commands_line(run))
    if idle:
        lines.append(
            "Redis alone, idle, one at a time (p50/p99 ms): "
            f"PING {idle['ping_p50_ms']:.3f}/{idle['ping_p99_ms']:.3f}, "
            f"append {idle['append_p50_ms']:.3f}/{idle['append_p99_ms']:.3f}, "
            f"append to arrival through a subscription {idle['append_to_arrival_p50_ms']:.3f}/"
            f"{idle['append_to_arrival_p99_ms']:.3f}"
        )
    lines.append(
        "columns: x = ratio to sqlite-1; node us/dl = CPU of all nodes per delivery; nodes, cores = each node's "
        "CPU over the trial; redis = redis-server's cores, us/msg its CPU per message; busy = every process "
        "(nodes, redis, generator) over all cores; append = the engine's append round trip during the trial"
    )
    return "\n".join(lines)


def commands_line(run: Run) -> str:
    """The commands redis-server ran per chat message, the costliest first: calls and µs each."""
    ranked = sorted(run.redis_commands.items(), key=lambda item: -item[1][1])
    shown = [f"{name} {calls:.2f}x {usec:.0f} us" for name, (calls, usec) in ranked if calls >= 0.01][:8]
    return ", ".join(shown)


def to_json(runs: list[Run], idle: dict[str, float], opts: Options, elapsed: float) -> dict[str, Any]:
    out: dict[str, Any] = fanout.to_json(
        {
            "machine": fanout.machine(),
            "options": asdict(opts),
            "elapsed_seconds": elapsed,
            "idle_round_trips": idle,
            "runs": [{**asdict(run), "trial": run.trial} for run in runs],
        }
    )
    return out


def run(opts: Options) -> tuple[list[Run], dict[str, float]]:
    info = fanout.machine()
    fanout.log(
        f"cluster: {info['cores']} cores, chatbus {info['chatbus']} ({info['chatbus_source']}), "
        f"load average {info['load_average_at_start'][0]:.2f}; configurations {', '.join(opts.configs)}"
    )
    redis = Redis(opts.appendonly)
    runs: list[Run] = []
    try:
        idle = idle_figures(redis, opts)
        with fanout.workers_running(opts.workers) as workers:
            load = fanout.Load(workers)
            for db, config in enumerate(opts.configs, start=1):
                runs += run_config(load, config, redis, db, opts)
    finally:
        redis.stop()
    return runs, idle


def idle_figures(redis: Redis, opts: Options) -> dict[str, float]:
    if not any(config.startswith("redis") for config in opts.configs):
        return {}
    return probes.idle_round_trips(redis.url(14))


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2-second trials at 100 msg/s")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="e.g. sqlite-1,redis-1,redis-1-nolimit")
    parser.add_argument("--rates", default="100,300,1000", help="offered messages per second, comma-separated")
    parser.add_argument("--clients", type=int, default=Options.clients)
    parser.add_argument("--senders", type=int, default=Options.senders)
    parser.add_argument("--seconds", type=float, default=Options.seconds)
    parser.add_argument("--workers", type=int, default=Options.workers, help="load-generator processes")
    parser.add_argument("--no-appendonly", action="store_true", help="Redis without its append-only file")
    parser.add_argument("--json", type=Path, default=Options.json_path)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    for config in configs:
        kind, _, rest = config.partition("-")
        if kind not in ("sqlite", "redis") or not rest.split("-")[0].isdigit() or (kind == "sqlite" and rest != "1"):
            parser.error(f"unknown configuration {config!r}: sqlite-1, redis-N or redis-N-nolimit")
    opts = Options(
        configs=configs,
        rates=tuple(float(r) for r in args.rates.split(",")),
        clients=args.clients,
        senders=min(args.senders, args.clients),
        seconds=args.seconds,
        workers=args.workers,
        appendonly=not args.no_appendonly,
        json_path=args.json,
        keep_logs=args.keep_logs,
    )
    if args.quick:
        opts.rates, opts.seconds = (100.0,), 2.0
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    try:
        runs, idle = run(opts)
    except fanout.BenchError as exc:
        fanout.log(f"cluster: stopped: {exc}")
        return 1
    fanout.log("")
    fanout.log(render(runs, idle, opts))
    opts.json_path.parent.mkdir(parents=True, exist_ok=True)
    opts.json_path.write_text(json.dumps(to_json(runs, idle, opts, time.monotonic() - started), indent=1))
    fanout.log(f"cluster: figures written to {opts.json_path}")
    return 0 if all(run.trial.correct for run in runs) else 2


if __name__ == "__main__":
    sys.exit(main())
