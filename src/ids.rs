//! Ids of records that pass between modules, each its own type so that one cannot be handed
//! where another is meant. (Accounts' ids are in `identity`, standards' and criteria's in
//! `standards::model`.) Read from a `uuid` column an id converts at the query (`From<Uuid>`);
//! bound to one, it passes its `Uuid` (`.0`).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// Identifies an assessor's sign-off of an enrolment.
    SignOffId
);
id_type!(
    /// Identifies a cohort.
    CohortId
);
id_type!(
    /// Identifies a candidate's enrolment in a cohort.
    EnrolmentId
);
id_type!(
    /// Identifies one version of a piece of evidence (each version is its own record).
    EvidenceId
);
