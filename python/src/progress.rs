//! Progress reports to a Python callable, from the library's threads.
//!
//! The library calls its progress function with the rows of each chunk,
//! from whichever thread does the work, with the GIL released. A
//! [`Progress`] counts them and calls the Python callable `(done, total)`
//! at most every [`INTERVAL`] (attaching to the interpreter only then), and
//! once more at the end with the final count. An exception the callable
//! raises stops the reports and is raised when the work returns: the
//! pass is not interrupted from here (the library's cancellation token is
//! not bound yet).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The least time between two calls of the callable (≤ 10 calls/s).
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// Rows done, reported to an optional Python callable `(done, total)`.
pub(crate) struct Progress {
    callback: Option<Py<PyAny>>,
    total: u64,
    done: AtomicU64,
    reported: AtomicU64,
    last: Mutex<Instant>,
    error: Mutex<Option<PyErr>>,
}

impl Progress {
    /// Reports to `callback` (None: counts only) out of `total` rows.
    pub(crate) fn new(callback: Option<Py<PyAny>>, total: u64) -> Self {
        Progress {
            callback,
            total,
            done: AtomicU64::new(0),
            reported: AtomicU64::new(u64::MAX),
            last: Mutex::new(Instant::now()),
            error: Mutex::new(None),
        }
    }

    /// `n` more rows done; the library's progress function. Called from
    /// any thread, without the GIL.
    pub(crate) fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if self.callback.is_none() {
            return;
        }
        // Another thread is reporting: this count will be in the next report.
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.elapsed() < INTERVAL {
            return;
        }
        self.call(done);
        *last = Instant::now();
    }

    fn call(&self, done: u64) {
        let Some(cb) = &self.callback else { return };
        Python::attach(|py| {
            let mut error = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if error.is_none() {
                if let Err(e) = cb.call1(py, (done, self.total)) {
                    *error = Some(e);
                }
            }
        });
        self.reported.store(done, Ordering::Relaxed);
    }

    /// After the work: the final report, or the exception the callable raised.
    pub(crate) fn finish(&self) -> PyResult<()> {
        let done = self.done.load(Ordering::Relaxed);
        if self.reported.load(Ordering::Relaxed) != done {
            self.call(done);
        }
        match self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
