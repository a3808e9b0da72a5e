//! How far an import has read its input, for a caller's progress display: importers take a
//! `progress(done, total)` callback in bytes of the input file.

use std::io::Read;

/// Tells `read(n)` the bytes read through it so far, at each read.
pub(crate) struct Counted<'a, R> {
    inner: R,
    bytes: u64,
    read: &'a dyn Fn(u64),
}

impl<'a, R> Counted<'a, R> {
    pub(crate) fn new(inner: R, read: &'a dyn Fn(u64)) -> Self {
        Self {
            inner,
            bytes: 0,
            read,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        (self.read)(self.bytes);
        Ok(n)
    }
}

/// The size of the input at `path` (0 if it cannot be read: opening it reports why).
pub(crate) fn size_of(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn every_read_reports_the_running_total() {
        let seen = Cell::new(Vec::new());
        let note = |n| {
            let mut v = seen.take();
            v.push(n);
            seen.set(v);
        };
        let mut r = Counted::new(&[7u8; 10][..], &note);
        let mut buf = [0u8; 4];
        while r.read(&mut buf).unwrap() > 0 {}
        assert_eq!(seen.take(), [4, 8, 10, 10]);
    }
}
