//! Portico's domain model: the resources users create (functions, HTTP APIs, routes,
//! integrations, stages), their ids and ARNs, the validation rules AWS applies to them,
//! and [`Catalog`], the immutable snapshot every plane reads.
//!
//! This crate does no I/O and knows nothing of HTTP, storage or processes. The serde
//! derives here define the *persisted* record form (owned by `portico-store`'s schema
//! version); AWS wire shapes are written by `portico-control` and `portico-gateway`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod arn;
pub mod catalog;
pub mod function;
pub mod ids;
pub mod metrics;
pub mod time;

pub use api::{Api, CorsConfiguration, Deployment, Integration, Route, Stage};
pub use arn::{FunctionArn, Qualifier};
pub use catalog::{ApiBundle, Catalog, Change, Record, RecordKind};
pub use function::{Alias, Architecture, CodeRef, Function, FunctionState, LastUpdateStatus, PolicyStatement, Runtime};

/// An AWS account id: twelve digits.
pub type AccountId = String;

/// Where a resource lives: an account and a region, as on AWS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    /// Twelve-digit account id.
    pub account_id: String,
    /// Region name such as `us-east-1`.
    pub region: String,
}

/// A value that failed AWS's validation rules; the control plane maps it to the
/// service's own error code (`InvalidParameterValueException`, `BadRequestException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
