//! Support crate for the tickwork integration tests; the tests live in `main.rs`.
