//! The byte budget of a list page: a page ends early rather than grow past it.
//!
//! `limit` bounds how many items a page holds; their size varies (a job may carry a 64 KiB
//! body, an execution a 2 KiB answer per attempt), so 500 of them could make an answer of
//! tens of megabytes, more than AWS Lambda can return (6 MB). A page that reaches the
//! budget ends there with a `nextCursor`: a page shorter than `limit` is not the last one;
//! only a `null` `nextCursor` says so.

use serde::Serialize;

/// Most bytes of items in one page (the first item is always in, whatever its size).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How many of `items`, from the first, fit in [`PAGE_BYTES`] as JSON (at least one).
pub fn fitting<T: Serialize>(items: &[T]) -> usize {
    let mut total = 0usize;
    for (n, item) in items.iter().enumerate() {
        let mut size = ByteCount(0);
        // Writing to a counter cannot fail, and a view always serializes.
        let _ = serde_json::to_writer(&mut size, item);
        total += size.0 + 1;
        if total > PAGE_BYTES && n > 0 {
            return n;
        }
    }
    items.len()
}

/// A writer that only counts.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_ends_before_its_budget_but_never_empty() {
        let big = "x".repeat(PAGE_BYTES / 3);
        assert_eq!(fitting(&[&big, &big, &big, &big]), 2);
        assert_eq!(fitting(&["a".repeat(PAGE_BYTES * 2)]), 1);
        assert_eq!(fitting(&["a", "b"]), 2);
        assert_eq!(fitting::<&str>(&[]), 0);
    }
}
