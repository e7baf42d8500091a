//! Keyset pagination shared by every list: objects come in creation order, and a page starts
//! strictly after a known object, so the cost of a page never depends on its depth.

use super::ids::Id;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Id>,
    /// Newest first (only where a list offers `order=desc`).
    pub descending: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
            descending: false,
        }
    }
}

impl PageRequest {
    /// The SQL comparison and order for this direction: `seq > cursor ORDER BY seq` or the
    /// reverse. A missing cursor starts at the beginning of either direction.
    pub fn keyset(&self, cursor: Option<i64>) -> (&'static str, i64, &'static str) {
        if self.descending {
            ("<", cursor.unwrap_or(i64::MAX), "DESC")
        } else {
            (">", cursor.unwrap_or(0), "ASC")
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Exact: the store fetches one row beyond the limit to know.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Self {
            items: rows,
            has_more,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_more: self.has_more,
        }
    }
}

/// A page that can be walked both ways (the Keycard dialect's `after` / `before` cursors).
/// At most one of `after` and `before` is set; neither means the first page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub after: Option<Id>,
    pub before: Option<Id>,
}

/// Items in creation order, whichever way the window was walked, and whether anything exists
/// beyond each end (exact: the store checks, it does not guess from the cursor).
#[derive(Debug, Clone)]
pub struct WindowPage<T> {
    pub items: Vec<T>,
    pub has_next: bool,
    pub has_prev: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overfetch_decides_has_more_exactly() {
        let p = Page::from_overfetch(vec![1, 2, 3], 2);
        assert_eq!(p.items, vec![1, 2]);
        assert!(p.has_more);
        let p = Page::from_overfetch(vec![1, 2], 2);
        assert!(!p.has_more);
        let p = Page::from_overfetch(Vec::<i32>::new(), 2);
        assert!(!p.has_more && p.items.is_empty());
    }
}
