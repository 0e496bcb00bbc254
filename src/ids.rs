//! Ids of records that pass between modules, each its own type so that one cannot be handed
//! where another is meant. (Accounts' ids are in `identity`, standards' and criteria's in
//! `standards::model`.) Read from a `uuid` column an id converts at the query (`From<Uuid>`);
//! bound to one, it passes its `Uuid` (`.0`).

/// Declares an id type: a `Uuid` of its own, stored and serialised as the bare `Uuid`,
/// displayed as it, and read from a `uuid` column with `From`.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub ::uuid::Uuid);

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<::uuid::Uuid> for $name {
            fn from(id: ::uuid::Uuid) -> Self {
                Self(id)
            }
        }
    };
}
pub(crate) use id_type;

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
id_type!(
    /// Identifies a piece of evidence across its versions (what its versions share).
    ItemId
);
id_type!(
    /// Identifies a file attached to one evidence version.
    FileId
);
id_type!(
    /// Identifies stored file content, which any number of attached files may share.
    BlobId
);
id_type!(
    /// Identifies an assessor's judgement of one claim of an evidence version.
    JudgementId
);
id_type!(
    /// Identifies an IQA's review of a sign-off.
    ReviewId
);
id_type!(
    /// Identifies one action of an IQA's disagreement.
    IqaActionId
);
id_type!(
    /// Identifies an IQA's sample of one judged evidence version.
    SampleId
);
