//! Page structs of the standards domain.

use askama::Template;
use askama_web::WebTemplate;

use super::db::StandardSummary;
use super::model::{Criterion, Standard};
use crate::web::layout::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "standards/index.html")]
pub struct StandardsIndexPage {
    pub layout: Layout,
    pub standards: Vec<StandardSummary>,
}

#[derive(Template, WebTemplate)]
#[template(path = "standards/show.html")]
pub struct StandardsShowPage {
    pub layout: Layout,
    pub standard: Standard,
    pub performance: Vec<Criterion>,
    pub knowledge: Vec<Criterion>,
    pub overdue_for_review: bool,
}

impl StandardsShowPage {
    /// The review date as published, for the notice.
    pub fn review_date_text(&self) -> &str {
        self.standard
            .metadata
            .iter()
            .find(|(k, _)| k == "Indicative Review Date")
            .map_or("", |(_, v)| v.as_str())
    }
}
