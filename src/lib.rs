//! helpdesk: email and chat messages become tickets, assigned by rules and answered from chat
//! or the web.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod bench;
pub mod config;
pub mod corpus;
pub mod domain;
pub mod import_csv;
pub mod ingest;
pub mod intake;
pub mod ops;
pub mod seed;
pub mod sign_in;
pub mod store;
pub mod surveys;
pub mod telemetry;
pub mod web;
pub use helpdesk_channel;
pub mod channels;
pub mod jobs;
