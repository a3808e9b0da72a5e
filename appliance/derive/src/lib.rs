//! chronicle-derive: derived Parquet (skeleton; lands with issue 7).
