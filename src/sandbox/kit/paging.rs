//! Query strings and paging windows. Each simulator decides its own parameter names, defaults,
//! limits and refusals (those are wire facts); the kit parses the query and cuts the page.

/// A request's query parameters, percent-decoded, in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw (`?`-less) query string; `None` is an empty query.
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|raw| {
                url::form_urlencoded::parse(raw.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The value of `key`; when it is repeated, the last one (as Rails and ASP.NET bind it).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `key`; when it is repeated, the first one (as a servlet's `getParameter`).
    pub fn first(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pairs.iter().any(|(name, _)| name == key)
    }

    /// Every `(key, value)`, in the order sent.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Adds the pairs of `other` after these (e.g. a form body's after the query string's).
    pub fn append(&mut self, other: Query) {
        self.pairs.extend(other.pairs);
    }
}

/// Which slice of a list one page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Items skipped before the page.
    pub offset: usize,
    /// The most items on the page.
    pub limit: usize,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: usize,
    /// The offset of the next page; `None` on the last page.
    pub next: Option<usize>,
}

impl Window {
    pub fn new(offset: usize, limit: usize) -> Self {
        Self { offset, limit }
    }

    /// The page of `items` this window covers.
    pub fn slice<T>(&self, items: Vec<T>) -> Page<T> {
        let total = items.len();
        let items: Vec<T> = items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        let end = self.offset.saturating_add(items.len());
        let next = (!items.is_empty() && end < total).then_some(end);
        Page { items, total, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_order_and_repeats() {
        let query = Query::parse(Some("a=1&b=x%20y&a=2&%24top=3"));
        assert_eq!(query.get("a"), Some("2"));
        assert_eq!(query.first("a"), Some("1"));
        assert_eq!(query.get("b"), Some("x y"));
        assert_eq!(query.get("$top"), Some("3"));
        assert!(query.contains("b") && !query.contains("c"));
        assert_eq!(query.pairs().count(), 4);
        assert_eq!(Query::parse(None), Query::default());
        assert_eq!(
            Query::from_form(b"grant_type=password&x=%2B").get("x"),
            Some("+")
        );
    }

    #[test]
    fn windows_cut_pages_and_name_the_next() {
        let items: Vec<u32> = (0..5).collect();
        let first = Window::new(0, 2).slice(items.clone());
        assert_eq!(
            (first.items, first.total, first.next),
            (vec![0, 1], 5, Some(2))
        );
        let last = Window::new(4, 2).slice(items.clone());
        assert_eq!((last.items, last.next), (vec![4], None));
        let beyond = Window::new(9, 2).slice(items);
        assert_eq!(
            (beyond.items.len(), beyond.total, beyond.next),
            (0, 5, None)
        );
        assert_eq!(Window::new(0, usize::MAX).slice(vec![1]).next, None);
    }
}
