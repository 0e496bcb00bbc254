//! Numbered pages of a long list: which page to show and the links around it.

/// Page `page` of a list of `total` items shown `size` at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: usize,
    pub size: usize,
    pub total: usize,
}

impl Paging {
    /// The page asked for, the first when none was; a page past the end is the last one, and
    /// absurd numbers cannot overflow.
    pub fn new(requested: Option<usize>, size: usize, total: usize) -> Self {
        let last = total.div_ceil(size.max(1)).max(1);
        Self {
            page: requested.unwrap_or(1).clamp(1, last),
            size: size.max(1),
            total,
        }
    }

    /// Items before this page.
    pub fn offset(self) -> usize {
        (self.page - 1) * self.size
    }

    /// Where this page stands in the whole, once `shown` items of it were read; `href` makes
    /// the address of a page.
    pub fn links(self, shown: usize, href: impl Fn(usize) -> String) -> PageLinks {
        PageLinks {
            first: if self.total == 0 {
                0
            } else {
                self.offset() + 1
            },
            last: (self.offset() + shown).min(self.total),
            total: self.total,
            previous: (self.page > 1).then(|| href(self.page - 1)),
            next: (self.page * self.size < self.total).then(|| href(self.page + 1)),
        }
    }
}

/// Where a page stands in its list: "Showing 101–200 of 1,000", and the links either side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLinks {
    /// The first and last item shown, counted from 1 (0 and 0 when there are none).
    pub first: usize,
    pub last: usize,
    pub total: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn href(page: usize) -> String {
        format!("?page={page}")
    }

    #[test]
    fn a_page_past_the_end_is_the_last_and_links_stop_at_the_ends() {
        let paging = Paging::new(Some(99), 100, 250);
        assert_eq!(paging.page, 3);
        assert_eq!(paging.offset(), 200);
        let links = paging.links(50, href);
        assert_eq!((links.first, links.last, links.total), (201, 250, 250));
        assert_eq!(links.previous.as_deref(), Some("?page=2"));
        assert_eq!(links.next, None);

        let first = Paging::new(None, 100, 250).links(100, href);
        assert_eq!((first.first, first.last), (1, 100));
        assert_eq!(first.previous, None);
        assert_eq!(first.next.as_deref(), Some("?page=2"));
    }

    #[test]
    fn an_empty_list_has_one_empty_page() {
        let paging = Paging::new(Some(0), 50, 0);
        assert_eq!(paging.page, 1);
        let links = paging.links(0, href);
        assert_eq!((links.first, links.last, links.total), (0, 0, 0));
        assert_eq!((links.previous, links.next), (None, None));
        assert_eq!(Paging::new(Some(usize::MAX), 50, 120).page, 3);
    }
}
