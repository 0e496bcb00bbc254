//! Competency status, stored as it changes: the one rule (`model`), the queries that read its
//! inputs and keep its results (`db`, called in the transaction of every change that can move
//! a status), and the check that what is stored is what the rule gives (`verify`).

pub mod db;
pub mod model;
pub mod verify;
