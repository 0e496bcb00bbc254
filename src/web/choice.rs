//! An option of a filter on a list page: its value in the query string, its label, and
//! whether the page is filtered by it now.

#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}
