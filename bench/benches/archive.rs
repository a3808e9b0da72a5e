//! Cold-tier archive on the real capture's largest `book.q` (imported from `shared/data` in the
//! setup; without it the bench skips):
//!
//! 1. **Transcode throughput** of `chronicle_archive::seekable::transcode` (default: 1 MiB
//!    frames, level 3, SHA-256 of input and output, `.idx`, fsync) against the zstd CLI on the
//!    same bytes at the same level, single-threaded (`zstd -3 --single-thread -c book.q >
//!    /dev/null`) and against one libzstd stream in-process (the same libzstd as the
//!    transcode: the CLI may be another zstd version), interleaved in the same run, the `.q`
//!    in the page cache for all. The
//!    transcode writes to /dev/shm (like the CLI's /dev/null, no disk) and, on another row, to
//!    the real disk under `target/`. Wall-clock medians, plus CPU time (this thread's for the
//!    transcode, the child's user+sys for the CLI) which preemption by other processes on a
//!    busy machine does not inflate.
//! 2. **Size**: the `.zst` (frames + seek table) against one monolithic `-3` stream (CLI and
//!    libzstd).
//! 3. **Point lookup on a cold file**: per lookup, both files are evicted from the page cache
//!    (`posix_fadvise(DONTNEED)`), then the `.idx` is read, the `.zst` opened and a random
//!    64 KiB-aligned 64 KiB range read through `SeekableReader` (bytes checked against the
//!    `.q`). p50/p99 over many lookups, the same with a warm page cache, and against
//!    decompressing the whole file (cold, through the reader and with `zstd -d`).

use chronicle_archive::seekable::{transcode, SeekableReader, TranscodeOptions};
use chronicle_archive::source::LocalFile;
use chronicle_archive::zidx::ZstIndex;
use chronicle_bench::{imported_capture, row, thread_cpu_ns};
use hdrhistogram::Histogram;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const TRANSCODE_RUNS: usize = 11;
const LOOKUPS: usize = 400;
const WHOLE_RUNS: usize = 9;
const LOOKUP_LEN: u64 = 64 << 10;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this harness has no tests.
    }
    let Some((dir, data)) = imported_capture() else {
        return;
    };
    let q = largest_book_q(&data);
    let original = std::fs::read(&q).unwrap();
    let Some(zstd) =
        chronicle_testkit::require(which_zstd(), "the zstd CLI", "apt-get install zstd")
    else {
        return;
    };
    println!(
        "\n## chronicle-bench archive: {} ({} bytes)",
        q.display(),
        original.len()
    );

    // --- 1. transcode throughput vs the references, interleaved ---------------------------
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let disk = dir.path().join("cold");
    std::fs::create_dir_all(&disk).unwrap();
    let opts = TranscodeOptions::default();
    let mut stats = None;
    let mut mono_lib_len = 0;
    let mut run_transcode = |out: &Path| {
        let (zst, idx) = (out.join("book.q.zst"), out.join("book.q.zst.idx"));
        let (t, c) = (Instant::now(), thread_cpu_ns());
        stats = Some(transcode(&q, &zst, &idx, &opts).unwrap());
        (t.elapsed().as_nanos() as f64, thread_cpu_ns() - c)
    };
    // The same libzstd as the transcode, one stream, checksum on, size pledged (what the CLI
    // does): isolates the cost of frames + SHA-256 + .idx from library version differences.
    let mut run_mono_lib = || {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        let mut enc = zstd::stream::Encoder::new(Counter(0), opts.level).unwrap();
        enc.include_checksum(true).unwrap();
        enc.set_pledged_src_size(Some(original.len() as u64))
            .unwrap();
        std::io::copy(&mut std::fs::File::open(&q).unwrap(), &mut enc).unwrap();
        mono_lib_len = enc.finish().unwrap().0;
        (t.elapsed().as_nanos() as f64, thread_cpu_ns() - c)
    };
    let run_cli = || {
        let c = children_cpu_ns();
        let t = Instant::now();
        let status = Command::new(&zstd)
            .args(["-3", "--single-thread", "-q", "-c"])
            .arg(&q)
            .stdout(std::fs::File::create("/dev/null").unwrap())
            .status()
            .unwrap();
        let wall = t.elapsed().as_nanos() as f64;
        assert!(status.success());
        (wall, children_cpu_ns() - c)
    };
    let names = [
        "transcode → /dev/shm",
        "transcode → disk (target/, fsync)",
        "libzstd one stream, in-process (same lib)",
        "zstd -3 --single-thread -c > /dev/null (CLI)",
    ];
    let mut samples: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); names.len()];
    for i in 0..=TRANSCODE_RUNS {
        let runs = [
            run_transcode(shm.path()),
            run_transcode(&disk),
            run_mono_lib(),
            run_cli(),
        ];
        // Run 0 warms the page cache and the binaries.
        for (s, (wall, cpu)) in samples.iter_mut().zip(runs).filter(|_| i > 0) {
            s.0.push(wall);
            s.1.push(cpu);
        }
    }
    let stats = stats.unwrap();
    let mib_s = |ns: f64| original.len() as f64 / (1 << 20) as f64 / (ns / 1e9);
    let cli_version = Command::new(&zstd)
        .arg("--version")
        .output()
        .unwrap()
        .stdout;
    println!(
        "\n### Transcode, level {}, {TRANSCODE_RUNS} interleaved runs, medians (MiB/s of .q)",
        opts.level
    );
    println!(
        "libzstd {} (chronicle, zstd crate); CLI: {}",
        zstd::zstd_safe::version_string(),
        String::from_utf8_lossy(&cli_version).trim()
    );
    println!("| what | wall MiB/s | CPU MiB/s | wall min..max ms |");
    println!("|---|---|---|---|");
    let medians: Vec<(f64, f64)> = samples
        .iter_mut()
        .zip(names)
        .map(|((wall, cpu), name)| {
            let (w, c) = (median(wall), median(cpu));
            println!(
                "| {name} | {:.1} | {:.1} | {} |",
                mib_s(w),
                mib_s(c),
                spread(wall)
            );
            (w, c)
        })
        .collect();
    for (r, name) in [(3, "CLI"), (2, "libzstd one stream")] {
        println!(
            "| transcode (/dev/shm) ÷ {name} (aim ≥ 0.9) | {:.3} | {:.3} | |",
            medians[r].0 / medians[0].0,
            medians[r].1 / medians[0].1
        );
    }

    // --- 2. size vs one monolithic stream ------------------------------------------------
    let mono = Command::new(&zstd)
        .args(["-3", "--single-thread", "-q", "-c"])
        .arg(&q)
        .output()
        .unwrap();
    assert!(mono.status.success());
    let mono_cli_len = mono.stdout.len() as u64;
    println!("\n### Size");
    println!("| file | bytes | ratio to .q | seekable ÷ it (aim ≤ 1.05) |");
    println!("|---|---|---|---|");
    let ratio = |n: u64| n as f64 / original.len() as f64;
    let rows = [
        ("book.q", original.len() as u64),
        ("book.q.zst (seekable)", stats.bytes_out),
        ("zstd -3 CLI, one stream", mono_cli_len),
        ("libzstd -3, one stream (same lib)", mono_lib_len),
    ];
    for (name, n) in rows {
        println!(
            "| {name} | {n} | {:.4} | {:.4} |",
            ratio(n),
            stats.bytes_out as f64 / n as f64
        );
    }
    println!(
        "| book.q.zst.idx ({} frames) | {} | | |",
        stats.frames, stats.idx_len
    );

    // --- 3. point lookups, cold and warm, vs the whole file --------------------------------
    let (zst, idx_path) = (disk.join("book.q.zst"), disk.join("book.q.zst.idx"));
    let blocks = original.len() as u64 / LOOKUP_LEN;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut lookup = |cold: bool, h: &mut Histogram<u64>| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let start = rng % blocks * LOOKUP_LEN;
        if cold {
            evict(&zst);
            evict(&idx_path);
        }
        let t = Instant::now();
        let idx = ZstIndex::read_file(&idx_path).unwrap();
        let mut r = SeekableReader::open(LocalFile::open(&zst).unwrap(), Some(&idx)).unwrap();
        let mut out = Vec::with_capacity(LOOKUP_LEN as usize);
        r.read_range(start, start + LOOKUP_LEN, &mut out).unwrap();
        h.record(t.elapsed().as_nanos() as u64).unwrap();
        assert!(out == original[start as usize..(start + LOOKUP_LEN) as usize]);
        assert!(r.frames_decoded() <= 2);
    };
    let mut cold = Histogram::<u64>::new(3).unwrap();
    let mut warm = Histogram::<u64>::new(3).unwrap();
    for _ in 0..LOOKUPS {
        lookup(true, &mut cold);
        lookup(false, &mut warm);
    }
    let mut whole_ours = Histogram::<u64>::new(3).unwrap();
    let mut whole_cli = Histogram::<u64>::new(3).unwrap();
    for _ in 0..WHOLE_RUNS {
        evict(&zst);
        let t = Instant::now();
        let mut r = SeekableReader::open(LocalFile::open(&zst).unwrap(), None).unwrap();
        let mut out = Vec::with_capacity(original.len());
        r.read_range(0, r.uncompressed_len(), &mut out).unwrap();
        whole_ours.record(t.elapsed().as_nanos() as u64).unwrap();
        assert!(black_box(out).len() == original.len());
        evict(&zst);
        let t = Instant::now();
        let st = Command::new(&zstd)
            .args(["-d", "-q", "-c"])
            .arg(&zst)
            .stdout(std::fs::File::create("/dev/null").unwrap())
            .status()
            .unwrap();
        whole_cli.record(t.elapsed().as_nanos() as u64).unwrap();
        assert!(st.success());
    }
    println!("\n### Point lookup of 64 KiB (read .idx + open + read_range), ns");
    println!("| what | n | p50 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|---|");
    println!("{}", row("cold (page cache evicted)", &cold));
    println!("{}", row("warm (page cache hot, new reader)", &warm));
    println!("{}", row("whole file, cold, SeekableReader", &whole_ours));
    println!(
        "{}",
        row("whole file, cold, zstd -d > /dev/null", &whole_cli)
    );
    println!(
        "\nNote: a 2-core VM shared with other builds; wall-clock figures are noisy, CPU-time \
         ratios less so. Reproduce: cargo bench -p chronicle-bench --bench archive"
    );
}

fn largest_book_q(data: &Path) -> PathBuf {
    std::fs::read_dir(data.join("v1/binance-usdm/btcusdt"))
        .unwrap()
        .map(|d| d.unwrap().path().join("book.q"))
        .max_by_key(|q| std::fs::metadata(q).unwrap().len())
        .unwrap()
}

fn which_zstd() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v zstd"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Drops `path`'s pages from the page cache (they are clean: transcode fsynced them).
fn evict(path: &Path) {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: a valid open fd; offset 0 and length 0 mean the whole file.
    let rc = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// User + system CPU of the waited-for children so far, ns.
fn children_cpu_ns() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// "min..max" of wall-clock samples, ms.
fn spread(v: &[f64]) -> String {
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    format!("{:.1}..{:.1}", lo / 1e6, hi / 1e6)
}

/// A sink that counts the bytes written to it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
