//! chronicle-replay: sources that replay market data into the appliance.
//!
//! - [`synthetic`] is a seeded model of Binance USD-M BTCUSDT that writes a capture in the
//!   real capture's format, so demos and load tests need no real data and still go through
//!   the real importer.
//! - [`source`] turns an input (a Binance capture, a DBN file, a stored `.q` partition or the
//!   synthetic model) into the stream a feed would deliver: encoded protocol records in
//!   capture order, each token declared first, optionally fanned out to many tokens and
//!   looped.
//! - [`pacing`] is the schedule (when each record is meant to leave) and [`player`] sends a
//!   source to one of the [`targets`] (`/dev/shm` rings, UDP datagrams, or none) on that
//!   schedule, measuring the pacing error against the schedule (no coordinated omission) into
//!   a [`report`].
//!
//! `docs/replay.md` is the user's guide (`chronicle replay`).

mod error;
pub mod pacing;
pub mod player;
pub mod report;
pub mod source;
pub mod synthetic;
pub mod targets;

pub use error::Error;
pub use pacing::{Pacing, Schedule};
pub use player::{play, play_with_progress, PlayOptions};
pub use report::Report;
pub use source::{Input, ReplayItem, ReplaySource, SourceOptions, SourceSummary};
pub use synthetic::{write_capture, Stats, SyntheticConfig, SyntheticFeed};
pub use targets::{NullTarget, RingTarget, Staged, Target, UdpTarget};
