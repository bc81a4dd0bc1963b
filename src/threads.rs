//! How many threads a run may use: the one notion of parallelism at the
//! API (the pass, the sweep, the experiment, the CLI's `--threads`, the
//! config's `threads`).
//!
//! A run's numbers never depend on it, bit for bit: every parallel loop
//! splits its work at fixed boundaries and adds in a fixed order, whatever
//! the count (the tests compare 1 and 2 threads). [`Threads::ONE`] is the
//! single-threaded path; it runs the same calls in one thread.
//!
//! Inside, the dense kernels take faer's [`Par`] (faer's own convention),
//! always made by [`Threads::par`], and rayon loops run in the pool of
//! [`Threads::install`], never rayon's global pool: a run asked for one
//! thread uses one.

use std::num::NonZeroUsize;

use faer::Par;

use crate::{Error, Result};

/// A thread count, or all of the machine's cores. Written as a number in
/// configs and on the command line: `0` means all cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threads {
    /// As many as the machine has cores (`std::thread::available_parallelism`).
    #[default]
    All,
    /// Exactly this many.
    Exactly(NonZeroUsize),
}

impl Threads {
    /// One thread: the single-threaded path.
    pub const ONE: Threads = Threads::Exactly(NonZeroUsize::MIN);

    /// `n` threads; `0` means all cores.
    pub fn new(n: usize) -> Threads {
        NonZeroUsize::new(n).map_or(Threads::All, Threads::Exactly)
    }

    /// The count (all cores resolved; at least 1).
    pub fn get(self) -> usize {
        match self {
            Threads::All => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            Threads::Exactly(n) => n.get(),
        }
    }

    /// faer's parallelism for the dense kernels: sequential for one thread.
    pub fn par(self) -> Par {
        match self.get() {
            1 => Par::Seq,
            n => Par::rayon(n),
        }
    }

    /// Runs `f` in a rayon pool of this many threads, so that every rayon
    /// loop and every [`Threads::par`] kernel inside uses exactly them.
    pub fn install<R: Send>(self, f: impl FnOnce() -> R + Send) -> Result<R> {
        Ok(Pool::new(self)?.run(f))
    }
}

/// A run's rayon pool, built once and entered for each parallel step (a
/// run whose progress callback must stay on the caller's thread enters it
/// around the computations only).
pub(crate) struct Pool {
    pool: rayon::ThreadPool,
    threads: Threads,
}

impl Pool {
    pub(crate) fn new(threads: Threads) -> Result<Pool> {
        let n = threads.get();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Worker(format!("thread pool of {n} threads: {e}")))?;
        Ok(Pool { pool, threads })
    }

    /// Runs `f` in the pool (rayon loops and `par()` kernels inside use it).
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// faer's parallelism for kernels run in this pool.
    pub(crate) fn par(&self) -> Par {
        self.threads.par()
    }

    pub(crate) fn threads(&self) -> Threads {
        self.threads
    }
}

/// `0` for all cores, as written.
impl From<Threads> for usize {
    fn from(t: Threads) -> usize {
        match t {
            Threads::All => 0,
            Threads::Exactly(n) => n.get(),
        }
    }
}

impl std::fmt::Display for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threads::All => write!(f, "all cores ({})", self.get()),
            Threads::Exactly(n) => write!(f, "{n}"),
        }
    }
}

impl serde::Serialize for Threads {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(usize::from(*self) as u64)
    }
}

impl<'de> serde::Deserialize<'de> for Threads {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        usize::try_from(n)
            .map(Threads::new)
            .map_err(|_| serde::de::Error::custom(format!("{n} threads")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_all_cores_and_round_trips() {
        assert_eq!(Threads::new(0), Threads::All);
        assert_eq!(Threads::new(1), Threads::ONE);
        assert_eq!(Threads::new(3).get(), 3);
        assert!(Threads::All.get() >= 1);
        for n in [0usize, 1, 7] {
            assert_eq!(usize::from(Threads::new(n)), n);
            let json = serde_json::to_string(&Threads::new(n)).unwrap();
            assert_eq!(json, n.to_string());
            assert_eq!(
                serde_json::from_str::<Threads>(&json).unwrap(),
                Threads::new(n)
            );
        }
        assert!(matches!(Threads::ONE.par(), Par::Seq));
        assert!(matches!(Threads::new(2).par(), Par::Rayon(n) if n.get() == 2));
    }

    #[test]
    fn install_runs_in_a_pool_of_that_size() {
        for n in [1, 3] {
            let seen = Threads::new(n).install(rayon::current_num_threads).unwrap();
            assert_eq!(seen, n);
        }
    }
}

/// A caller's request to stop long work — a Python `KeyboardInterrupt`, a
/// GUI's stop button, a job's deadline. Clones share one flag: hand a clone
/// to the options and keep one to call [`Cancel::cancel`] from any thread.
/// The pass checks it after every chunk, the sweep before every group and
/// test chunk; a cancelled run returns [`crate::Error::Cancelled`] and
/// writes nothing (its scratch outputs are removed like a failed run's).
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Asks the work holding a clone of this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled: the check at each step.
    pub(crate) fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() {
            Err(crate::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}
