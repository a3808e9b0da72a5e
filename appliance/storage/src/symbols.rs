//! `dim_symbol`: the SCD type 2 symbol table, `{data_dir}/v1/dim_symbol.json`
//! (`docs/formats/partition.md`).
//!
//! `symbol_id` is the stable identity of an instrument; the raw symbol and the readable
//! `symbol_code` are attributes valid over `[valid_from_ns, valid_to_ns)`. Each row has its
//! own `symbol_version_id`. Rows are kept sorted by (venue, raw_symbol, valid_from_ns).

use crate::fsutil::{create_dir_durable, write_atomic};
use crate::StorageError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "chronicle.dim_symbol/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolRow {
    pub symbol_id: u64,
    pub symbol_version_id: u64,
    pub venue: String,
    pub raw_symbol: String,
    pub symbol_code: String,
    pub valid_from_ns: u64,
    /// `None`: still valid.
    pub valid_to_ns: Option<u64>,
}

impl SymbolRow {
    pub fn valid_at(&self, ts_ns: u64) -> bool {
        self.valid_from_ns <= ts_ns && self.valid_to_ns.is_none_or(|to| ts_ns < to)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FileBody {
    format: String,
    rows: Vec<SymbolRow>,
}

#[derive(Clone)]
pub struct DimSymbol {
    /// None: a table kept in memory only (a sender with no data directory of its own).
    path: Option<PathBuf>,
    rows: Vec<SymbolRow>,
    dirty: bool,
}

/// The readable default code of a raw symbol: lowercase, anything but `[a-z0-9._-]` as `-`.
pub fn default_code(raw_symbol: &str) -> String {
    raw_symbol
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl DimSymbol {
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("v1").join("dim_symbol.json")
    }

    /// Loads the table of a data directory (empty if it has none yet).
    pub fn load(data_dir: &Path) -> Result<Self, StorageError> {
        let path = Self::path_in(data_dir);
        let rows = match std::fs::read(&path) {
            Ok(b) => {
                let body: FileBody =
                    serde_json::from_slice(&b).map_err(|e| StorageError::Invalid {
                        path: path.clone(),
                        reason: format!("dim_symbol: {e}"),
                    })?;
                if body.format != FORMAT {
                    return Err(StorageError::Invalid {
                        path,
                        reason: format!("format `{}` is not `{FORMAT}`", body.format),
                    });
                }
                body.rows
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        Ok(Self {
            path: Some(path),
            rows,
            dirty: false,
        })
    }

    /// An empty table that `save` never writes: identities assigned for this process only.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            rows: Vec::new(),
            dirty: false,
        }
    }

    /// The file the table is kept in (what an error names), or a note that it is in memory.
    fn origin(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("(dim_symbol in memory)"))
    }

    pub fn rows(&self) -> &[SymbolRow] {
        &self.rows
    }

    /// The log of symbol `symbol_id` under `data_dir`: the directory `v1/{venue}/{code}` of
    /// each of its versions (a code can change between versions), in row order, each once.
    pub fn log_dirs(&self, data_dir: &Path, symbol_id: u64) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for r in self.rows.iter().filter(|r| r.symbol_id == symbol_id) {
            let d = data_dir.join("v1").join(&r.venue).join(&r.symbol_code);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// The row valid for `(venue, raw_symbol)` at `ts_ns`.
    pub fn resolve(&self, venue: &str, raw_symbol: &str, ts_ns: u64) -> Option<&SymbolRow> {
        self.rows
            .iter()
            .find(|r| r.venue == venue && r.raw_symbol == raw_symbol && r.valid_at(ts_ns))
    }

    /// Resolves, registering a first, open-ended row for a symbol never seen before. A known
    /// symbol whose rows leave `ts_ns` uncovered is an error: someone edited the table and
    /// the gap is theirs to close.
    pub fn resolve_or_register(
        &mut self,
        venue: &str,
        raw_symbol: &str,
        ts_ns: u64,
    ) -> Result<SymbolRow, StorageError> {
        if let Some(r) = self.resolve(venue, raw_symbol, ts_ns) {
            return Ok(r.clone());
        }
        if self
            .rows
            .iter()
            .any(|r| r.venue == venue && r.raw_symbol == raw_symbol)
        {
            return Err(StorageError::Invalid {
                path: self.origin(),
                reason: format!("no row of {venue}/{raw_symbol} is valid at {ts_ns} ns"),
            });
        }
        let row = SymbolRow {
            symbol_id: self.rows.iter().map(|r| r.symbol_id).max().unwrap_or(0) + 1,
            symbol_version_id: self
                .rows
                .iter()
                .map(|r| r.symbol_version_id)
                .max()
                .unwrap_or(0)
                + 1,
            venue: venue.to_owned(),
            raw_symbol: raw_symbol.to_owned(),
            symbol_code: default_code(raw_symbol),
            valid_from_ns: 0,
            valid_to_ns: None,
        };
        self.rows.push(row.clone());
        self.rows.sort_by(|a, b| {
            (&a.venue, &a.raw_symbol, a.valid_from_ns).cmp(&(
                &b.venue,
                &b.raw_symbol,
                b.valid_from_ns,
            ))
        });
        self.dirty = true;
        Ok(row)
    }

    /// Registers `(venue, raw_symbol)` under `symbol_id`, the id a live feed declared it with
    /// (identity is the feed's), unless the table already has a row for it valid at 0. Runs
    /// under an exclusive lock on `{data_dir}/v1/dim_symbol.lock` and re-reads the table
    /// first, so two shards declaring at once do not overwrite each other. An id that names
    /// another symbol is an error naming both.
    pub fn register_declared(
        data_dir: &Path,
        venue: &str,
        raw_symbol: &str,
        symbol_id: u64,
    ) -> Result<SymbolRow, StorageError> {
        let lock_path = data_dir.join("v1").join("dim_symbol.lock");
        create_dir_durable(lock_path.parent().expect("has a parent"))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StorageError::io(&lock_path, e))?;
        lock.lock().map_err(|e| StorageError::io(&lock_path, e))?;
        let mut table = Self::load(data_dir)?;
        if let Some(r) = table.resolve(venue, raw_symbol, 0) {
            return Ok(r.clone());
        }
        if let Some(other) = table.rows.iter().find(|r| r.symbol_id == symbol_id) {
            return Err(StorageError::Invalid {
                path: table.origin(),
                reason: format!(
                    "{venue}/{raw_symbol} is declared as token {symbol_id}, which is {}/{} here",
                    other.venue, other.raw_symbol
                ),
            });
        }
        let row = table.resolve_or_register(venue, raw_symbol, 0)?;
        let row = SymbolRow { symbol_id, ..row };
        let at = table
            .rows
            .iter()
            .position(|r| r.venue == venue && r.raw_symbol == raw_symbol)
            .expect("registered above");
        table.rows[at] = row.clone();
        table.save()?;
        Ok(row)
    }

    /// Writes the table if it changed (atomically).
    pub fn save(&mut self) -> Result<(), StorageError> {
        let Some(path) = self.path.clone().filter(|_| self.dirty) else {
            return Ok(());
        };
        create_dir_durable(path.parent().expect("path has a parent"))?;
        let body = FileBody {
            format: FORMAT.into(),
            rows: self.rows.clone(),
        };
        let mut b = serde_json::to_vec_pretty(&body).expect("dim_symbol serializes");
        b.push(b'\n');
        write_atomic(&path, &b)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_symbol_takes_the_feeds_id_unless_another_symbol_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let row = DimSymbol::register_declared(dir.path(), "v", "AAA", 7).unwrap();
        assert_eq!((row.symbol_id, row.symbol_code.as_str()), (7, "aaa"));
        // Durable, and the next registration by anyone continues after it.
        let mut table = DimSymbol::load(dir.path()).unwrap();
        assert_eq!(table.resolve("v", "AAA", 0).unwrap().symbol_id, 7);
        assert_eq!(
            table.resolve_or_register("v", "BBB", 0).unwrap().symbol_id,
            8
        );
        table.save().unwrap();
        // Declared again (a re-declaration, another shard): the row as it is.
        assert_eq!(
            DimSymbol::register_declared(dir.path(), "v", "AAA", 7).unwrap(),
            row
        );
        // Another symbol declared with an id the table gave to BBB: refused, naming both.
        let err = DimSymbol::register_declared(dir.path(), "v", "CCC", 8)
            .unwrap_err()
            .to_string();
        assert!(err.contains("v/CCC") && err.contains("v/BBB"), "{err}");
        assert!(DimSymbol::load(dir.path())
            .unwrap()
            .resolve("v", "CCC", 0)
            .is_none());
    }
}
