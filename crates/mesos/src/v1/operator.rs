//! Master operator API (placeholder until written).
