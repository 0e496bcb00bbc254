//! Ids of records that pass between modules, each its own type so that one cannot be handed
//! where another is meant. (Accounts' ids are in `identity`, standards' and criteria's in
//! `standards::model`.)

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies an assessor's sign-off of an enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct SignOffId(pub Uuid);

impl fmt::Display for SignOffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// As read from a `uuid` column.
impl From<Uuid> for SignOffId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}
