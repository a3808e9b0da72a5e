//! chronicle-archive: Zone 3 formats and stores (skeleton; modules land with issue 7).
