//! The HTTP proving service's core: storage on PostgreSQL or an embedded SQLite file, tenants
//! and API keys, and the job queue that workers on any number of machines share.
#![warn(missing_docs)]

pub mod callbacks;
mod capacity;
pub mod ceilings;
pub mod child;
pub mod counters;
pub mod db;
pub mod disk_cache;
pub mod error;
pub mod estimates;
pub mod executor;
pub mod fhe;
pub mod fleet;
pub mod http;
mod key_cache;
mod lru;
pub mod models;
pub mod queue;
pub mod retention;
pub mod segmented;
pub mod service;
pub mod store;
pub mod tenants;
pub mod worker;

pub use db::{Backend, Db};
pub use error::{Error, Result};
