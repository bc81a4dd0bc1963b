//! Outputs that are never lost, never half-written, never mixed.
//!
//! Every file or directory gramstream writes goes through here:
//!
//! * **Never over an input**: [`refuse_input_overwrite`] compares an output
//!   with the run's inputs — same path, a symlink to one, or a hard link
//!   (same device and inode) — before any work.
//! * **Never half-written**: a `Staged` output is written under a scratch
//!   name in the destination's directory, unique to this run (host, process,
//!   a counter), then synced and renamed into place (`Staged::commit`); a
//!   failed run removes its scratch (on drop), and so does SIGINT or SIGTERM
//!   (the binary calls [`interrupt`] from its signal thread).
//! * **Never mixed**: two runs with the same destination write different
//!   scratch names, so neither removes or reuses the other's. At commit, a
//!   destination that another run created or replaced since this one
//!   started is not replaced: this run's result is kept beside it under a
//!   name that says whose it is, and the error says so. (Between that check
//!   and the rename a window of a few system calls remains; a destination
//!   that did not exist is claimed atomically with `RENAME_NOREPLACE`.)
//! * **Scratch of dead runs** (`kill -9`, a node lost) is removed by the next
//!   run writing to the same directory (`Staged::file`, `Staged::dir`): scratch names carry
//!   the host and process id, and only this host's processes that no longer
//!   exist are cleaned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::{Error, Result};

/// Scratch paths of this process that a signal handler must remove.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static COUNTER: AtomicU64 = AtomicU64::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
const MARK: &str = ".gramstream-";

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

/// The file's identity (device, inode, modification time), if it exists.
fn identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

/// `path` with its directory resolved (through symlinks) when it exists.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses `output` when it is one of `inputs`, resolves to one (symlinks),
/// is a hard link of one, or — for an output directory — holds one.
pub fn refuse_input_overwrite<P: AsRef<Path>>(output: &Path, inputs: &[P]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let out = resolved(output);
    let out_meta = std::fs::metadata(output).ok();
    for input in inputs {
        let input = input.as_ref();
        let same_file = match (&out_meta, std::fs::metadata(input)) {
            (Some(o), Ok(i)) => o.dev() == i.dev() && o.ino() == i.ino(),
            _ => false,
        };
        let inside =
            out_meta.as_ref().is_some_and(|m| m.is_dir()) && resolved(input).starts_with(&out);
        if same_file || resolved(input) == out || inside {
            return Err(Error::Output {
                path: output.to_path_buf(),
                problem: format!(
                    "{} the input {}: refusing to overwrite it, choose another output",
                    if inside { "holds" } else { "is" },
                    input.display()
                ),
            });
        }
    }
    Ok(())
}

/// For a signal handler: marks the process interrupted (no new scratch is
/// created from now on: `Staged` refuses) and removes every scratch path
/// of this process. The work still running may then fail on its vanished
/// files; [`interrupted`] tells its error apart from a real one.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    remove_scratch();
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Removes every scratch path of this process. The paths stay registered:
/// a path the work creates after this (a file it was opening) is removed
/// by the next call.
fn remove_scratch() {
    let paths = match SCRATCH.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    for p in paths {
        if std::fs::remove_file(&p).is_ok() {
            continue;
        }
        // A directory the work may still be writing into: renamed first, so
        // that the work's next path-based write fails instead of racing the
        // removal with new entries.
        let mut dead = p.as_os_str().to_os_string();
        dead.push("-removing");
        let dead = PathBuf::from(dead);
        let target = if std::fs::rename(&p, &dead).is_ok() {
            dead
        } else {
            p
        };
        for _ in 0..5 {
            if std::fs::remove_dir_all(&target).is_ok() || !target.exists() {
                break;
            }
        }
    }
}

fn register(path: &Path) {
    if let Ok(mut g) = SCRATCH.lock() {
        g.push(path.to_path_buf());
    }
}

fn unregister(path: &Path) {
    if let Ok(mut g) = SCRATCH.lock() {
        g.retain(|p| p != path);
    }
}

/// The scratch path of destination `dest` for process `pid` of this host,
/// its `n`-th staged output: `.gramstream-NAME.HOST-PID-N` beside `dest`.
pub fn scratch_path(dest: &Path, pid: u32, n: u64) -> PathBuf {
    let name = dest
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let name = format!("{MARK}{name}.{}-{pid}-{n}", host());
    match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(name),
        _ => PathBuf::from(name),
    }
}

/// Whether process `pid` exists on this host.
fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes scratch left in `dir` by dead processes of this host for
/// destination name `name`.
fn remove_stale(dir: &Path, name: &str, host: &str) {
    let prefix = format!("{MARK}{name}.{host}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !alive(p)) {
            let p = e.path();
            let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
        }
    }
}

/// An output written under a scratch name and moved into place at the end
/// (see the module docs). Dropping it uncommitted removes the scratch.
#[derive(Debug)]
pub(crate) struct Staged {
    dest: PathBuf,
    scratch: PathBuf,
    before: Option<(u64, u64, i64, i64)>,
    dir: bool,
    done: bool,
}

impl Staged {
    fn make(dest: &Path, dir: bool) -> Result<Self> {
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Output {
                path: dest.to_path_buf(),
                problem: "not a file path (it has no UTF-8 file name)".into(),
            })?;
        let parent = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        remove_stale(&parent, name, &host());
        let scratch = scratch_path(
            dest,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        );
        register(&scratch);
        if interrupted() {
            unregister(&scratch);
            return Err(Error::Output {
                path: dest.to_path_buf(),
                problem: "interrupted".into(),
            });
        }
        if dir {
            std::fs::create_dir(&scratch).map_err(|e| {
                unregister(&scratch);
                io(&scratch, e)
            })?;
        }
        Ok(Staged {
            dest: dest.to_path_buf(),
            scratch,
            before: identity(dest),
            dir,
            done: false,
        })
    }

    /// A file to be written at [`Staged::path`] and moved to `dest`.
    pub fn file(dest: &Path) -> Result<Self> {
        Self::make(dest, false)
    }

    /// A directory, created now at [`Staged::path`], to be moved to `dest`.
    pub fn dir(dest: &Path) -> Result<Self> {
        Self::make(dest, true)
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.scratch
    }

    /// Syncs the scratch and moves it to the destination, replacing what was
    /// there when this run started — but not what another run put there
    /// since (see the module docs).
    pub fn commit(mut self) -> Result<()> {
        if !self.dir {
            std::fs::File::open(&self.scratch)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&self.scratch, e))?;
        }
        let now = identity(&self.dest);
        if now != self.before {
            return Err(self.keep_beside());
        }
        let moved = match self.before {
            None => rename_noreplace(&self.scratch, &self.dest),
            Some(_) if self.dir => {
                // A directory cannot be renamed over a non-empty one: move the
                // old one aside first, then remove it.
                let mut old = self.scratch.as_os_str().to_os_string();
                old.push("-old");
                let old = PathBuf::from(old);
                std::fs::rename(&self.dest, &old)
                    .and_then(|()| std::fs::rename(&self.scratch, &self.dest))
                    .map(|()| {
                        let _ = std::fs::remove_dir_all(&old);
                    })
            }
            Some(_) => std::fs::rename(&self.scratch, &self.dest),
        };
        match moved {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(self.keep_beside())
            }
            Err(e) => return Err(io(&self.dest, e)),
        }
        self.done = true;
        unregister(&self.scratch);
        let dir = match self.dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(dir, e))
    }

    /// Another run wrote the destination meanwhile: keep this run's result
    /// beside it, and say so.
    fn keep_beside(&mut self) -> Error {
        let mut name = self.dest.as_os_str().to_os_string();
        name.push(format!(".{}-{}", host(), std::process::id()));
        let beside = PathBuf::from(name);
        let kept = std::fs::rename(&self.scratch, &beside).is_ok();
        if kept {
            self.done = true;
            unregister(&self.scratch);
        }
        Error::Output {
            path: self.dest.clone(),
            problem: format!(
                "written by another run while this one ran; not replaced{}",
                if kept {
                    format!(": this run's result is {}", beside.display())
                } else {
                    String::new()
                }
            ),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: the error that matters is the one being returned.
            let _ = if self.dir {
                std::fs::remove_dir_all(&self.scratch)
            } else {
                std::fs::remove_file(&self.scratch)
            };
            unregister(&self.scratch);
        }
    }
}

/// rename(2) that fails with `AlreadyExists` instead of replacing.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // Filesystems without RENAME_NOREPLACE: check, then rename.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if to.exists() {
                Err(std::io::ErrorKind::AlreadyExists.into())
            } else {
                std::fs::rename(from, to)
            }
        }
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("in.h5");
        std::fs::write(&input, b"x").unwrap();
        assert!(refuse_input_overwrite(&input, &[&input]).is_err());
        let link = d.path().join("link.h5");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        assert!(refuse_input_overwrite(&link, &[&input]).is_err());
        let hard = d.path().join("hard.h5");
        std::fs::hard_link(&input, &hard).unwrap();
        assert!(refuse_input_overwrite(&hard, &[&input]).is_err());
        let dotted = d.path().join(".").join("in.h5");
        assert!(refuse_input_overwrite(&dotted, &[&input]).is_err());
        assert!(refuse_input_overwrite(d.path(), &[&input]).is_err());
        assert!(refuse_input_overwrite(&d.path().join("out.h5"), &[&input]).is_ok());
    }

    #[test]
    fn scratch_is_unique_removed_on_drop_and_committed_in_place() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out.csv");
        let a = Staged::file(&dest).unwrap();
        let b = Staged::file(&dest).unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path(), b"a").unwrap();
        std::fs::write(b.path(), b"b").unwrap();
        drop(b);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        a.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"a");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_result_written_by_another_run_meanwhile_is_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("stats.h5");
        let mine = Staged::file(&dest).unwrap();
        std::fs::write(mine.path(), b"mine").unwrap();
        std::fs::write(&dest, b"theirs").unwrap();
        let e = mine.commit().unwrap_err().to_string();
        assert!(e.contains("written by another run"), "{e}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"theirs");
        let kept: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("stats.h5."))
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(e.contains(&kept[0]));
    }

    #[test]
    fn stale_scratch_of_dead_processes_is_removed() {
        let d = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum cannot be alive.
        let stale = scratch_path(&d.path().join("out.csv"), u32::MAX, 0);
        let other_host = d.path().join(format!("{MARK}out.csv.elsewhere-1-0"));
        std::fs::write(&stale, b"").unwrap();
        std::fs::write(&other_host, b"").unwrap();
        let s = Staged::file(&d.path().join("out.csv")).unwrap();
        assert!(!stale.exists());
        assert!(other_host.exists());
        drop(s);
    }

    #[test]
    fn directories_replace_a_previous_one() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("results");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old.txt"), b"").unwrap();
        let s = Staged::dir(&dest).unwrap();
        std::fs::write(s.path().join("new.txt"), b"").unwrap();
        s.commit().unwrap();
        assert!(dest.join("new.txt").exists());
        assert!(!dest.join("old.txt").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
