//! Progress: a bar on a terminal; silent in pipes and CI unless `--progress`
//! asks for it, in which case plain log lines go to stderr every few seconds.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

static FORCE: AtomicBool = AtomicBool::new(false);

/// `--progress`: report progress even when stderr is not a terminal.
pub fn force(on: bool) {
    FORCE.store(on, Ordering::Relaxed);
}

/// Rows done out of a total, shown as a bar or as log lines.
pub struct Bar {
    bar: ProgressBar,
    log: Option<Mutex<LogLines>>,
}

struct LogLines {
    label: String,
    unit: &'static str,
    total: u64,
    start: Instant,
    last: Instant,
    message: String,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

/// A bar that shows nothing (MPI ranks other than 0).
pub fn hidden_bar() -> Bar {
    Bar {
        bar: ProgressBar::hidden(),
        log: None,
    }
}

/// A bar counting rows, with rows/s and ETA.
pub fn rows_bar(total: u64, label: &str) -> Bar {
    counting_bar(total, label, "rows")
}

/// A bar counting `unit`s (rows, groups, …), with a rate and ETA.
pub fn counting_bar(total: u64, label: &str, unit: &'static str) -> Bar {
    if !std::io::stderr().is_terminal() {
        let log = FORCE.load(Ordering::Relaxed).then(|| {
            let now = Instant::now();
            Mutex::new(LogLines {
                label: label.to_string(),
                unit,
                total,
                start: now,
                last: now,
                message: String::new(),
            })
        });
        let bar = ProgressBar::hidden();
        bar.set_length(total);
        return Bar { bar, log };
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(&format!(
        "{{prefix:>10}} [{{bar:40}}] {{pos}}/{{len}} {unit}  {{per_sec}}  {{msg}}  ETA {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    Bar { bar, log: None }
}

impl Bar {
    /// Adds `n` rows done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(log) = &self.log {
            if let Ok(mut l) = log.lock() {
                if l.last.elapsed() >= LOG_EVERY {
                    l.last = Instant::now();
                    let done = self.bar.position();
                    let s = l.start.elapsed().as_secs_f64().max(1e-9);
                    let rate = done as f64 / s;
                    let eta = (l.total.saturating_sub(done)) as f64 / rate.max(1e-9);
                    eprintln!(
                        "{}: {done}/{} {u}, {}, {}, ETA {eta:.0} s",
                        l.label,
                        l.total,
                        if rate >= 1.0 {
                            format!("{rate:.1} {}/s", l.unit)
                        } else {
                            format!(
                                "{:.1} s per {}",
                                1.0 / rate.max(1e-9),
                                l.unit.trim_end_matches('s')
                            )
                        },
                        l.message,
                        u = l.unit
                    );
                }
            }
        }
    }

    /// Rows done so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Extra figures shown after the rate.
    pub fn set_message(&self, message: String) {
        if let Some(log) = &self.log {
            if let Ok(mut l) = log.lock() {
                l.message.clone_from(&message);
            }
        }
        self.bar.set_message(message);
    }

    /// Removes the bar.
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}
