//! chronicle-tier: the tier manager (skeleton; lands with issue 7).
