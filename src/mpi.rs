//! Running under `mpiexec`: the ranks of a distributed pass.
//!
//! [`launched`] reads the launcher's environment (always compiled, so that a
//! binary built without MPI can refuse to run as N copies that would each
//! do the whole pass). With the `mpi` feature, [`World`] carries the
//! messages of [`crate::stats::ranges`] over MPI's world communicator: the
//! pass itself is the same code as with one process, so the statistics are
//! the same bits for any number of ranks.

/// The number of processes a launcher started, when this process is one of
/// them: `mpiexec`/`mpirun` (Open MPI: `OMPI_COMM_WORLD_SIZE`; MPICH and
/// PMI: `PMI_SIZE`), or Slurm's `srun` (`SLURM_STEP_NUM_TASKS`, which
/// `srun --mpi=pmix` sets where Open MPI's own variable is missing, and
/// which also catches `srun -n 16` of a build without MPI: 16 copies of one
/// pass). `None` when not launched so.
pub fn launched() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Why `command` cannot run as one of `processes` launched processes, if
/// it cannot: a binary built without MPI (`built_with_mpi` false) would
/// run the whole command in each process; with MPI, only commands that
/// share their work among ranks (`distributed`: `accumulate`,
/// `experiment`) run on more than one.
pub fn launch_problem(
    built_with_mpi: bool,
    processes: usize,
    distributed: bool,
    command: &str,
) -> Option<String> {
    if processes <= 1 {
        return None;
    }
    if !built_with_mpi {
        return Some(format!(
            "this gramstream was built without MPI, but runs as one of {processes} processes \
             under mpiexec: each would run the whole `{command}`. Rebuild it with `cargo build \
             --release --features mpi` (needs libopenmpi-dev and libclang-dev), or run it \
             without mpiexec"
        ));
    }
    if !distributed {
        return Some(format!(
            "`{command}` runs as one process; under mpiexec only `accumulate` and `experiment` \
             share their work among ranks: run it without mpiexec"
        ));
    }
    None
}

#[cfg(feature = "mpi")]
pub use world::World;

#[cfg(feature = "mpi")]
mod world {
    use ::mpi::collective::SystemOperation;
    use ::mpi::environment::Universe;
    use ::mpi::topology::{Communicator, SimpleCommunicator};
    use ::mpi::traits::*;

    use crate::stats::ranks::Ranks;
    use crate::{Error, Result};

    /// Values per message: MPI counts are 32-bit, so larger arrays (a packed
    /// Gram beyond P ≈ 65,000, a gate sample of millions of values) go in
    /// pieces of at most this many. `GRAMSTREAM_MPI_PIECE` sets a smaller
    /// piece, so that the tests send a small pass's arrays in many pieces.
    const PIECE: usize = 1 << 26;

    fn piece() -> usize {
        std::env::var("GRAMSTREAM_MPI_PIECE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .map_or(PIECE, |n: usize| n.min(PIECE))
    }

    /// MPI, initialised for this process (finalised when dropped).
    pub struct World {
        _universe: Universe,
        world: SimpleCommunicator,
        local: usize,
        piece: usize,
    }

    impl World {
        /// Initialises MPI ("funneled": only the thread that initialised it
        /// sends and receives; the pass's pool only computes).
        pub fn init() -> Result<World> {
            let (universe, _) = ::mpi::initialize_with_threading(::mpi::Threading::Funneled)
                .ok_or_else(|| Error::Worker("MPI was already initialised".into()))?;
            let world = universe.world();
            let local = world.split_shared(world.rank()).size() as usize;
            Ok(World {
                _universe: universe,
                world,
                local,
                piece: piece(),
            })
        }

        /// Collective: returns when every rank has called it.
        pub fn barrier(&self) {
            self.world.barrier();
        }

        fn reduce(&self, value: u64, op: SystemOperation) -> u64 {
            let mut out = 0u64;
            self.world.all_reduce_into(&value, &mut out, op);
            out
        }
    }

    impl Ranks for World {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn min(&self, value: u64) -> u64 {
            self.reduce(value, SystemOperation::min())
        }
        fn max(&self, value: u64) -> u64 {
            self.reduce(value, SystemOperation::max())
        }
        fn on_this_node(&self) -> usize {
            self.local
        }
        /// Waits by polling with short sleeps: a rank waiting here for rank
        /// 0 (an experiment's followers during its solve) would otherwise
        /// spin on a core that rank 0's solve needs (Open MPI's blocking
        /// calls busy-wait).
        fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) {
            let root = self.world.process_at_rank(root as i32);
            let mut len = bytes.len() as u64;
            ::mpi::request::scope(|scope| {
                let mut request = root.immediate_broadcast_into(scope, &mut len);
                loop {
                    match request.test() {
                        Ok(_) => break,
                        Err(r) => request = r,
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            });
            bytes.resize(len as usize, 0);
            for piece in bytes.chunks_mut(self.piece) {
                root.broadcast_into(piece);
            }
        }
        fn send_u64(&self, to: usize, values: &[u64]) {
            let p = self.world.process_at_rank(to as i32);
            values.chunks(self.piece).for_each(|piece| p.send(piece));
        }
        fn send_f64(&self, to: usize, values: &[f64]) {
            let p = self.world.process_at_rank(to as i32);
            values.chunks(self.piece).for_each(|piece| p.send(piece));
        }
        fn receive_u64(&self, from: usize, values: &mut [u64]) {
            let p = self.world.process_at_rank(from as i32);
            for piece in values.chunks_mut(self.piece) {
                p.receive_into(piece);
            }
        }
        fn receive_f64(&self, from: usize, values: &mut [f64]) {
            let p = self.world.process_at_rank(from as i32);
            for piece in values.chunks_mut(self.piece) {
                p.receive_into(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::launch_problem;

    #[test]
    fn only_distributed_commands_of_an_mpi_build_run_as_many_processes() {
        for built in [false, true] {
            for distributed in [false, true] {
                assert_eq!(launch_problem(built, 1, distributed, "sweep"), None);
            }
        }
        let without = launch_problem(false, 3, true, "accumulate").unwrap();
        assert!(
            without.contains("built without MPI") && without.contains("3 processes"),
            "{without}"
        );
        assert!(without.contains("--features mpi"), "{without}");
        let sweep = launch_problem(true, 2, false, "sweep").unwrap();
        assert!(sweep.contains("`sweep` runs as one process"), "{sweep}");
        assert_eq!(launch_problem(true, 2, true, "accumulate"), None);
    }
}
