//! Assessment of evidence and the competency status that follows from it.

pub mod caseload;
pub mod db;
pub mod judging;
pub mod sign_off;

use crate::identity::ASSESSOR;
use crate::state::AppState;
use crate::web::routes::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/caseload", ASSESSOR, caseload::show)
        .get("/enrolments/{id}/sign-off", ASSESSOR, sign_off::show)
        .post("/enrolments/{id}/sign-off", ASSESSOR, sign_off::sign)
        .post("/evidence/{id}/judgements", ASSESSOR, judging::judge)
}
