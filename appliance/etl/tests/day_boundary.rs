//! The day boundary: the previous day's partition takes stragglers for the
//! grace hour, then closes; a later straggler is rejected or goes to the late stream, per
//! policy, and is counted.

mod common;
use chronicle_etl::{LatePolicy, Refinery};
use chronicle_protocol::Body;
use chronicle_storage::meta::PartitionMeta;
use chronicle_storage::segment::Segment;
use common::{refinery, trade};
use std::path::Path;

const MIDNIGHT: u64 = 1_723_161_600_000_000_000; // 2024-08-09T00:00:00Z
const S: u64 = 1_000_000_000;

fn trades_in(dir: &Path) -> Vec<u64> {
    Segment::open(&dir.join("book.q"))
        .unwrap()
        .frames()
        .filter_map(|f| match f.record.decode().unwrap().body {
            Body::Trade(t) => Some(t.trade_id),
            _ => None,
        })
        .collect()
}

fn run(
    policy: LatePolicy,
) -> (
    tempfile::TempDir,
    chronicle_etl::Counters,
    Vec<PartitionMeta>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = refinery(dir.path(), policy);
    let mut metas = Vec::new();
    let mut push = |r: &mut Refinery, ts: u64, id: u64| {
        r.push(1, ts, ts, trade(id), &mut |_| {}).unwrap();
        metas.extend(r.close_expired().unwrap().into_iter().map(|c| c.meta));
    };
    push(&mut r, MIDNIGHT - 10 * S, 1); // day 1
    push(&mut r, MIDNIGHT + 5 * S, 2); // day 2
    push(&mut r, MIDNIGHT - 5 * S, 3); // straggler within the grace hour: day 1
    push(&mut r, MIDNIGHT + 3_599 * S, 4); // day 2, still inside the grace
    push(&mut r, MIDNIGHT - 4 * S, 5); // straggler, still accepted
    push(&mut r, MIDNIGHT + 3_600 * S, 6); // the grace is over: day 1 closes
    push(&mut r, MIDNIGHT - 3 * S, 7); // too late
    let counters = r.counters;
    metas.extend(r.finish().unwrap().into_iter().map(|c| c.meta));
    (dir, counters, metas)
}

#[test]
fn stragglers_inside_the_grace_hour_join_their_day() {
    let (dir, _, metas) = run(LatePolicy::Reject);
    let day1 = dir.path().join("v1/testvenue/abc/2024-08-08");
    let day2 = dir.path().join("v1/testvenue/abc/2024-08-09");
    assert_eq!(trades_in(&day1), vec![1, 3, 5]);
    assert_eq!(trades_in(&day2), vec![2, 4, 6]);
    // Day 1 was closed (its meta written) when the grace ran out, before day 2.
    assert_eq!(metas[0].date, "2024-08-08");
    assert_eq!(metas[1].date, "2024-08-09");
}

#[test]
fn reject_policy_counts_the_late_record_and_writes_it_nowhere() {
    let (dir, counters, _) = run(LatePolicy::Reject);
    assert_eq!(counters.late_rejected, 1);
    assert!(!dir.path().join("v1/testvenue/abc/2024-08-08/late").exists());
}

#[test]
fn late_stream_policy_sets_the_record_aside() {
    let (dir, counters, metas) = run(LatePolicy::LateStream);
    assert_eq!(counters.late_streamed, 1);
    let late = dir.path().join("v1/testvenue/abc/2024-08-08/late");
    assert_eq!(trades_in(&late), vec![7]);
    assert_eq!(
        trades_in(&dir.path().join("v1/testvenue/abc/2024-08-08")),
        vec![1, 3, 5],
        "the closed day is untouched"
    );
    assert!(metas.iter().any(|m| m.late_policy == "late_stream"));
}
