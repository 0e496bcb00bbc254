//! Assessment of evidence and the competency status that follows from it.

pub mod status;
