#![allow(missing_docs, unused)]
use super::*;
use crate::Result;
use std::path::Path;
pub fn write_stats(
    path: &Path,
    header: &StatsHeader,
    accumulators: &mut dyn Iterator<Item = Result<SuffStats>>,
    reservoir: &Reservoir,
    cursor: Option<&Cursor>,
) -> Result<()> {
    todo!()
}
pub struct StatsFile;
impl StatsFile {
    pub fn open(path: &Path) -> Result<Self> {
        todo!()
    }
    pub fn header(&self) -> &StatsHeader {
        todo!()
    }
    pub fn is_checkpoint(&self) -> bool {
        todo!()
    }
    pub fn accumulator(&self, a: usize) -> Result<SuffStats> {
        todo!()
    }
    pub fn reservoir(&self) -> Result<Reservoir> {
        todo!()
    }
    pub fn cursor(&self) -> Result<Option<Cursor>> {
        todo!()
    }
}
