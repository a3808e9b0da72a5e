use std::time::Instant;
fn main() {
    if std::env::var("SINGLE").is_ok() {
        single();
        return;
    }
    two_threads();
    let clock = quanta::Clock::new();
    let n = 10_000_000u64;
    let t = Instant::now();
    let mut x = 0u64;
    for _ in 0..n {
        x = x.wrapping_add(clock.raw());
    }
    println!(
        "raw(): {:.1} ns/call ({x})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    for _ in 0..n {
        x = x.wrapping_add(std::time::Instant::now().elapsed().as_nanos() as u64);
    }
    println!(
        "Instant::now: {:.1} ns/call",
        t.elapsed().as_nanos() as f64 / n as f64 / 2.0
    );
    // single-thread ring push+pop
    let (mut p, mut c) = chronicle_feed::mem_ring(1 << 20);
    let mut rec = [0u8; 64];
    rec[0] = 2;
    rec[2] = 64;
    let t = Instant::now();
    let mut got = 0u64;
    for i in 0..n {
        rec[8..16].copy_from_slice(&i.to_le_bytes());
        p.push(&rec).unwrap();
        if let Some(v) = c.pop().unwrap() {
            got += v.bytes[8] as u64;
        }
    }
    println!(
        "mem ring push+pop same thread: {:.1} ns/pair ({got})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; 64]>::new(1 << 14);
    let t = Instant::now();
    for i in 0..n {
        rec[8..16].copy_from_slice(&i.to_le_bytes());
        tx.push(rec).unwrap();
        if let Ok(v) = rx.pop() {
            got += v[8] as u64;
        }
    }
    println!(
        "rtrb push+pop same thread: {:.1} ns/pair ({got})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}

pub fn two_threads() {
    let n = 20_000_000u64;
    let (mut p, mut c) = chronicle_feed::mem_ring(1 << 20);
    let h = std::thread::spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
        let mut rec = [0u8; 64];
        rec[0] = 2;
        rec[2] = 64;
        let mut fulls = 0u64;
        for i in 0..n {
            rec[8..16].copy_from_slice(&i.to_le_bytes());
            while !p.try_push(&rec).unwrap() {
                fulls += 1;
                std::hint::spin_loop();
            }
        }
        fulls
    });
    core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
    let t = Instant::now();
    let mut got = 0;
    let mut empties = 0u64;
    while got < n {
        match c.pop().unwrap() {
            Some(v) => {
                assert_eq!(v.bytes[8], got as u8);
                got += 1
            }
            None => {
                empties += 1;
                std::hint::spin_loop()
            }
        }
    }
    let fulls = h.join().unwrap();
    println!(
        "mem ring 2 threads: {:.1} M/s fulls={fulls} empties={empties}",
        n as f64 / t.elapsed().as_secs_f64() / 1e6
    );
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; 64]>::new(1 << 14);
    let h = std::thread::spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
        let mut rec = [0u8; 64];
        let mut fulls = 0u64;
        for i in 0..n {
            rec[8..16].copy_from_slice(&i.to_le_bytes());
            while tx.push(rec).is_err() {
                fulls += 1;
                std::hint::spin_loop();
            }
        }
        fulls
    });
    let t = Instant::now();
    let mut got = 0;
    let mut empties = 0u64;
    while got < n {
        match rx.pop() {
            Ok(v) => {
                assert_eq!(v[8], got as u8);
                got += 1
            }
            Err(_) => {
                empties += 1;
                std::hint::spin_loop()
            }
        }
    }
    let fulls = h.join().unwrap();
    println!(
        "rtrb 2 threads: {:.1} M/s fulls={fulls} empties={empties}",
        n as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}

fn single() {
    let n = 100_000_000u64;
    let (mut p, mut c) = chronicle_feed::mem_ring(1 << 20);
    let mut rec = [0u8; 64];
    rec[0] = 2;
    rec[2] = 64;
    let t = Instant::now();
    let mut got = 0u64;
    for i in 0..n {
        rec[8..16].copy_from_slice(&i.to_le_bytes());
        p.push(&rec).unwrap();
        if let Some(v) = c.pop().unwrap() {
            got += v.bytes[8] as u64;
        }
    }
    println!(
        "mem ring push+pop same thread: {:.1} ns/pair ({got})",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
