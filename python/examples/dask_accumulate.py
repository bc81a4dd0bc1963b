"""The pass distributed with Dask: one task per shard, merged in shard order.

Noise, folds and the gate sample of a row are keyed on (seed, shard index,
row), so a task that accumulates shard ``i`` alone with
``first_shard_index=i`` draws what the single run draws for that shard,
and ``gramstream.merge`` of the parts, in shard order, gives the single
run's statistics (to rounding: the parts' sums are re-expressed around the
first part's shift; the gate sample merges exactly).

    python dask_accumulate.py --out stats.h5 --parts parts/ [--scheduler tcp://…] \\
        [--noise 1] [--seed 42] [--folds 5] [--mem-budget 4GiB] SHARD.h5 …

Without ``--scheduler`` a ``LocalCluster`` is started. The parts are
written to ``--parts`` (a directory every worker can write and the client
can read), one ``part_<i>.h5`` per shard. Give each task a memory budget
that fits beside the other tasks on its machine (``mem_budget``): the
default, 80 % of the available memory, assumes one pass per machine.
"""

import argparse
import os

import gramstream


def accumulate_part(shard, index, out, options):
    """The task: shard ``index`` of the whole list, alone, to ``out``."""
    gramstream.accumulate([shard], out=out, first_shard_index=index, **options)
    return out


def dask_accumulate(client, shards, out, parts_dir, **options):
    """Accumulates each shard as a Dask task and merges the parts, in shard
    order, into ``out``; returns the merged ``gramstream.Statistics``.

    ``options`` are ``gramstream.accumulate``'s (noise, seed, partitions,
    folds, mode, mem_budget, threads, gate_sample, …), the same for every
    task; ``first_shard_index`` is each shard's position in ``shards``.
    """
    if "first_shard_index" in options:
        raise ValueError("first_shard_index is each shard's position in `shards`")
    os.makedirs(parts_dir, exist_ok=True)
    futures = [
        client.submit(
            accumulate_part,
            os.fspath(shard),
            i,
            os.path.join(os.fspath(parts_dir), f"part_{i}.h5"),
            options,
            key=f"gramstream-accumulate-{i}-{os.path.basename(os.fspath(shard))}",
            pure=False,
        )
        for i, shard in enumerate(shards)
    ]
    parts = client.gather(futures)  # in submission order: shard order
    return gramstream.merge(parts, out)


def main():
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shards", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", required=True, help="directory for the per-shard statistics")
    ap.add_argument("--scheduler", help="address of a Dask scheduler (default: a LocalCluster)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--folds", type=int, default=1)
    ap.add_argument("--gate-sample", type=int, default=0)
    ap.add_argument("--mem-budget", default=None)
    ap.add_argument("--threads", type=int, default=1, help="threads per task")
    args = ap.parse_args()
    options = dict(noise=args.noise, seed=args.seed, folds=args.folds, gate_sample=args.gate_sample,
                   mem_budget=args.mem_budget, threads=args.threads)
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1))
    with client:
        stats = dask_accumulate(client, args.shards, args.out, args.parts, **options)
    print(stats)


if __name__ == "__main__":
    main()
