//! One process, or a rank under `mpiexec`: how this run was started and
//! what each rank does.
//!
//! Under `mpiexec -n N` (binary built with `--features mpi`), `accumulate`
//! and `experiment` share their passes' row ranges among the ranks
//! (`gramstream::stats::ranges`): rank 0 prints, writes and reports. A
//! failure of the shared work is known to every rank (the library's
//! collective calls agree on it): rank 0 prints it, once, and every rank
//! exits 1 after it has ([`Launch::settle`]). An error a rank meets on its
//! own (before the shared work) it prints itself. Other commands run as
//! one process.

use anyhow::{bail, Result};

/// This process's part in the run.
pub enum Launch {
    /// Not under a launcher, or one process of one.
    Alone,
    /// A rank of an MPI job.
    #[cfg(feature = "mpi")]
    Mpi(gramstream::mpi::World),
}

impl Launch {
    /// Whether this process reports (prints, shows progress): rank 0, or alone.
    pub fn reports(&self) -> bool {
        match self {
            Launch::Alone => true,
            #[cfg(feature = "mpi")]
            Launch::Mpi(w) => gramstream::stats::ranks::Ranks::rank(w) == 0,
        }
    }

    /// A distributed command's result, settled on every rank: a failure is
    /// printed by rank 0 alone, and no rank leaves before it is printed
    /// (Open MPI ends the job when the first rank exits with a failure,
    /// which could kill rank 0 mid-message). Every rank knows the failure,
    /// so every rank reaches the barrier.
    #[cfg(feature = "mpi")]
    pub fn settle<T>(&self, result: gramstream::Result<T>) -> Result<T> {
        match self {
            Launch::Alone => Ok(result?),
            Launch::Mpi(world) => match result {
                Ok(v) => Ok(v),
                Err(e) => {
                    if self.reports() {
                        let e = anyhow::Error::from(e).context("gramstream failed");
                        eprintln!("error: {}", crate::one_line(&e));
                    }
                    world.barrier();
                    Err(Printed.into())
                }
            },
        }
    }

    /// The ranks to share a pass with, if any.
    #[cfg(feature = "mpi")]
    pub fn ranks(&self) -> Option<&gramstream::mpi::World> {
        match self {
            Launch::Alone => None,
            Launch::Mpi(w) => Some(w),
        }
    }
}

/// A failure already printed (by rank 0): exit 1 without a word.
#[derive(Debug)]
pub struct Printed;

impl std::fmt::Display for Printed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the error was printed by rank 0")
    }
}

impl std::error::Error for Printed {}

/// How this process was started, refusing what cannot work: N copies of a
/// binary built without MPI (each would run the whole command), or a
/// command other than `accumulate` and `experiment` on more than one rank.
pub fn launch(distributed: bool, command: &str) -> Result<Launch> {
    let Some(n) = gramstream::mpi::launched() else {
        return Ok(Launch::Alone);
    };
    if let Some(problem) =
        gramstream::mpi::launch_problem(cfg!(feature = "mpi"), n, distributed, command)
    {
        bail!(problem);
    }
    #[cfg(feature = "mpi")]
    if distributed {
        return Ok(Launch::Mpi(gramstream::mpi::World::init()?));
    }
    Ok(Launch::Alone)
}
