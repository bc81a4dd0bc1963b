//! Reading ahead on a thread of its own.
//!
//! A [`Prefetcher`] owns the sources and a plan; its thread fills chunks and
//! sends them, in plan order, through a bounded channel of `depth` chunks.
//! The consumer hands each chunk back with [`Prefetcher::recycle`], so at
//! most `depth + 2` chunk buffers ever exist and the steady state allocates
//! nothing. Memory in flight is therefore bounded by
//! `(depth + 2) × chunk_rows × pixels × 16` bytes (flux and error, f64).

use crossbeam_channel::{bounded, Receiver, Sender};

use super::{plan::plan_iter, Chunk, ChunkSource};
use crate::{Error, Result};

/// Reads chunks ahead of the consumer (see the module docs).
pub struct Prefetcher {
    chunks: Receiver<Result<Chunk>>,
    spare: Sender<Chunk>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts reading `sources` in chunks of `chunk_rows` rows, shard after
    /// shard, keeping up to `depth` (≥ 1) chunks ready.
    pub fn spawn<S: ChunkSource + 'static>(
        sources: Vec<S>,
        chunk_rows: usize,
        depth: usize,
    ) -> Result<Self> {
        Self::spawn_with(sources, chunk_rows, depth, |_| {})
    }

    /// Like [`Self::spawn`], and runs `stage` on every chunk in the reader
    /// thread before sending it — per-row work (noise, SNR) that then
    /// overlaps with the consumer's.
    pub(crate) fn spawn_with<S: ChunkSource + 'static>(
        sources: Vec<S>,
        chunk_rows: usize,
        depth: usize,
        mut stage: impl FnMut(&mut Chunk) + Send + 'static,
    ) -> Result<Self> {
        let rows: Vec<usize> = sources.iter().map(|s| s.rows()).collect();
        let tasks = plan_iter(rows, chunk_rows)?;
        let depth = depth.max(1);
        let (tx, rx) = bounded::<Result<Chunk>>(depth);
        let (spare_tx, spare_rx) = bounded::<Chunk>(depth + 2);
        let thread = std::thread::Builder::new()
            .name("gramstream-reader".into())
            .spawn(move || {
                let mut sources = sources;
                for task in tasks {
                    let mut chunk = spare_rx.try_recv().unwrap_or_default();
                    let result = sources[task.source]
                        .read_chunk(task.rows, &mut chunk)
                        .map(|()| {
                            stage(&mut chunk);
                            chunk
                        });
                    let failed = result.is_err();
                    if tx.send(result).is_err() || failed {
                        return; // consumer gone, or the error is delivered: stop.
                    }
                }
            })
            .map_err(|e| Error::Worker(e.to_string()))?;
        Ok(Prefetcher {
            chunks: rx,
            spare: spare_tx,
            thread: Some(thread),
        })
    }

    /// Gives a chunk's buffers back for reuse.
    pub fn recycle(&self, chunk: Chunk) {
        let _ = self.spare.try_send(chunk);
    }
}

impl Iterator for Prefetcher {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.chunks.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                // Channel closed: the thread finished or panicked.
                let handle = self.thread.take()?;
                match handle.join() {
                    Ok(()) => None,
                    Err(_) => Some(Err(Error::Worker("the reader thread panicked".into()))),
                }
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Dropping the receiver makes the thread's next send fail; then join.
        let (_tx, rx) = bounded(0);
        drop(std::mem::replace(&mut self.chunks, rx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;

    #[test]
    fn delivers_every_row_in_order_and_reuses_buffers() {
        let p = 3;
        let make = |shard: u64, n: usize| {
            let flux: Vec<f64> = (0..n * p)
                .map(|i| (shard * 1000) as f64 + i as f64)
                .collect();
            MemorySource::new(shard, p, flux, None, vec![0.0; n], 1).unwrap()
        };
        let sources = vec![make(0, 10), make(1, 0), make(2, 7)];
        let mut pre = Prefetcher::spawn(sources, 4, 2).unwrap();
        let mut seen = Vec::new();
        while let Some(chunk) = pre.next() {
            let chunk = chunk.unwrap();
            for r in 0..chunk.rows {
                seen.push((chunk.shard, chunk.start + r, chunk.flux_row(r)[0]));
            }
            pre.recycle(chunk);
        }
        let expect: Vec<_> = (0..10)
            .map(|r| (0, r, (r * p) as f64))
            .chain((0..7).map(|r| (2, r, 2000.0 + (r * p) as f64)))
            .collect();
        assert_eq!(seen, expect);
    }

    #[test]
    fn dropping_early_stops_the_thread() {
        let flux = vec![0.0; 1000 * 2];
        let src = MemorySource::new(0, 2, flux, None, vec![], 0).unwrap();
        let mut pre = Prefetcher::spawn(vec![src], 1, 1).unwrap();
        assert!(pre.next().is_some());
        drop(pre); // must not hang
    }
}
