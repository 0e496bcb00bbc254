//! Assessment of evidence and the competency status that follows from it.

pub mod caseload;
pub mod db;
pub mod judging;
pub mod reversal;
pub mod sign_off;

use crate::identity::ASSESSOR;
use crate::state::AppState;
use crate::web::routes::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/caseload", ASSESSOR, caseload::show)
        .get("/enrolments/{id}/sign-off", ASSESSOR, sign_off::show)
        .post("/enrolments/{id}/sign-off", ASSESSOR, sign_off::sign)
        .post(
            "/enrolments/{id}/iqa-actions/{action}/answer",
            ASSESSOR,
            sign_off::answer,
        )
        .post("/evidence/{id}/judgements", ASSESSOR, judging::judge)
        .get(
            "/evidence/{id}/criteria/{criterion}/reverse",
            ASSESSOR,
            reversal::show,
        )
        .post(
            "/evidence/{id}/criteria/{criterion}/reverse",
            ASSESSOR,
            reversal::reverse,
        )
}
