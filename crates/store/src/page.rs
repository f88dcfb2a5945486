//! Cursor pagination shared by every list: newest first, `starting_after` an id, `has_more`.

/// The largest page a caller may ask for.
pub const MAX_LIMIT: i64 = 100;

/// What page to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// How many items (clamped to 1..=[`MAX_LIMIT`]; 0 means the default of 10).
    pub limit: i64,
    /// Return items older than this id (ids sort by creation time).
    pub starting_after: Option<String>,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: i64) -> Self {
        Self {
            limit,
            starting_after: None,
        }
    }

    /// The limit actually applied.
    pub fn effective_limit(&self) -> i64 {
        if self.limit <= 0 {
            10
        } else {
            self.limit.min(MAX_LIMIT)
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// True when older items remain after the last one.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: i64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Self {
            items: rows,
            has_more,
        }
    }
}
