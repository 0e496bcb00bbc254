//! What every page carries: the navigation and, later, the signed-in user and flash messages.

/// One link of the main navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// Marks the section the page belongs to (`aria-current`).
    pub current: bool,
}

/// The sections of the portal, used to mark where a page belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Standards,
}

/// The frame around every page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub nav: Vec<NavItem>,
}

impl Layout {
    /// The layout for a page in `section`.
    pub fn new(section: Section) -> Self {
        let items = [(Section::Standards, "/standards", "Standards")];
        Self {
            nav: items
                .into_iter()
                .map(|(s, href, label)| NavItem {
                    href,
                    label,
                    current: s == section,
                })
                .collect(),
        }
    }

    /// The layout for pages that belong to no section, such as errors.
    pub fn public() -> Self {
        Self::new(Section::Home)
    }
}
