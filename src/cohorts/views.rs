//! Page structs of cohorts.

use askama::Template;
use askama_web::WebTemplate;

use super::admin::CohortForm;
use super::db::{Cohort, CohortSummary, EnrolmentRow, Person};
use super::model::RosterError;
use crate::forms::FormErrors;
use crate::standards::model::StandardId;
use crate::web::layout::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "cohorts/index.html")]
pub struct CohortsIndexPage {
    pub layout: Layout,
    pub cohorts: Vec<CohortSummary>,
    pub standards: Vec<(StandardId, String)>,
    pub form: CohortForm,
    pub errors: FormErrors,
}

/// An account a roster created, with its invitation link (shown once).
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    pub name: String,
    pub email: String,
    pub link: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "cohorts/show.html")]
pub struct CohortShowPage {
    pub layout: Layout,
    pub cohort: Cohort,
    pub enrolments: Vec<EnrolmentRow>,
    pub candidates: Vec<Person>,
    pub assessors: Vec<Person>,
    pub iqas: Vec<Person>,
    pub errors: FormErrors,
    pub roster_errors: Vec<RosterError>,
    pub created: Vec<CreatedAccount>,
}
