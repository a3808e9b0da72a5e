//! Derives one partition's Parquet and prints what was written and how long it took:
//! `cargo run --release -p chronicle-derive --example derive -- PARTITION_DIR OUT.parquet`.
//! A measuring tool for one-off figures; it is not a benchmark (no repetitions, no spread).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [partition, out] = args.as_slice() else {
        return Err("usage: derive PARTITION_DIR OUT.parquet".into());
    };
    let t = Instant::now();
    let s = chronicle_derive::derive_partition(partition.as_ref(), out.as_ref())?;
    println!(
        "{} rows, {} row groups, {} bytes in {:.3} s",
        s.rows,
        s.row_groups,
        s.bytes,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
