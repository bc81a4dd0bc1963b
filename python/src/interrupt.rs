//! Ctrl-C during long work.
//!
//! Python runs signal handlers on the main thread only, when it holds the
//! interpreter, so the work runs on a thread of its own while the calling
//! thread waits detached from the interpreter and checks Python's signals
//! every [`POLL`]. A `KeyboardInterrupt` (or any exception a handler
//! raises) cancels the library's [`Cancel`] token; the work stops at its
//! next check (a chunk, a group), cleans up its scratch like a failed run,
//! and the exception is raised.

use std::time::Duration;

use gramstream::threads::Cancel;
use pyo3::prelude::*;

/// How often the waiting thread checks Python's signals.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Runs `work` on its own thread; Ctrl-C cancels `cancel` and raises
/// `KeyboardInterrupt` once the work has stopped.
pub(crate) fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &Cancel,
    work: impl FnOnce() -> T + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        // The worker says when it is done, so a short call returns at once
        // instead of at the next poll.
        let (done, finished) = crossbeam_channel::bounded::<()>(1);
        let handle = scope.spawn(move || {
            let value = work();
            let _ = done.send(());
            value
        });
        let mut interrupted = None;
        loop {
            let wait = py.detach(|| finished.recv_timeout(POLL));
            if !matches!(wait, Err(crossbeam_channel::RecvTimeoutError::Timeout)) {
                break; // done, or the worker panicked (join below re-raises it)
            }
            if interrupted.is_none() {
                if let Err(e) = py.check_signals() {
                    cancel.cancel();
                    interrupted = Some(e);
                }
            }
        }
        let result = match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match interrupted {
            Some(e) => Err(e),
            None => Ok(result),
        }
    })
}
