//! End-to-end tests of the portal over a real PostgreSQL: each `#[sqlx::test]` gets its own
//! freshly migrated database, and requests go through the whole router with `oneshot`.

mod assessments;
mod audit;
mod auth;
mod changes;
mod cohorts;
mod demo;
mod drills;
mod evidence;
mod helpers;
mod integrity;
mod layout;
mod policy;
mod records;
mod roles;
mod sampling;
mod second_factor;
mod serve;
mod standards;
mod status;
mod trail;
mod uploads;
mod users;
mod web;
