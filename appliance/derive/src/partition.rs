//! Deriving a whole partition: the one place that knows how the reader walks one.

use crate::{DeriveError, DeriveStats, Deriver};
use chronicle_reader::render::Scale;
use chronicle_reader::{Partition, TimeRange};
use std::ops::ControlFlow;
use std::path::Path;

/// Derives the Parquet of the partition at `partition` (on any tier the reader opens) into
/// `out`: exactly the records `chronicle cat` prints for it, in the same order. A torn tail
/// (only a partition still being appended has one) ends the records there, as it ends `cat`.
pub fn derive_partition(partition: &Path, out: &Path) -> Result<DeriveStats, DeriveError> {
    let part = Partition::open(partition)?;
    let h = part.body.header();
    let mut deriver = Deriver::create(
        out,
        Scale {
            price_exponent: h.price_exponent,
            quantity_exponent: h.quantity_exponent,
        },
    )?;
    let mut failed = None;
    part.scan(TimeRange::ALL, |f| match deriver.push(&f.record) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(DeriveError::Frame {
                path: part.body.origin().to_owned(),
                offset: f.offset,
                source: Box::new(e),
            });
            ControlFlow::Break(())
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => deriver.finish(),
    }
}
