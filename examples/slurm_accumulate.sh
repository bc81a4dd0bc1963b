#!/bin/bash
# One pass over the shards on 16 nodes (README, "MPI"): submit with
#   sbatch examples/slurm_accumulate.sh
# Build first with `cargo build --release --features mpi` against the
# cluster's Open MPI. One rank per node, all its cores: the Gram kernel is
# threaded within a rank. The statistics are the same bits for any --nodes.
#SBATCH --job-name=gramstream
#SBATCH --nodes=16 --ntasks-per-node=1 --cpus-per-task=32
#SBATCH --mem=64G --time=01:00:00
set -euo pipefail
srun --mpi=pmix target/release/gramstream accumulate --out stats.h5 \
    --folds 5 --gate-sample 20000 --threads "$SLURM_CPUS_PER_TASK" --mem-budget 56GiB \
    --checkpoint stats.ckpt.h5 --resume /shared/pfs/shard_*.h5
# Then, on one node: gramstream sweep stats.h5 --test test.h5 --out sweep
