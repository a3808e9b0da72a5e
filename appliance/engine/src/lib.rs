//! chronicle-engine (being written).
