//! Assessment of evidence and the competency status that follows from it.

pub mod caseload;
pub mod judging;
pub mod status;

use crate::web::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/caseload", caseload::show)
        .post("/evidence/{id}/judgements", judging::judge)
}
