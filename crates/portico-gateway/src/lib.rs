//! The HTTP API data plane: turns a request to `{apiId}.execute-api.*` into a Lambda
//! invocation and the function's answer back into an HTTP response, as API Gateway
//! HTTP APIs do.
//!
//! The pure phases (route matching, CORS, event building, response mapping) live in
//! their own modules and do no I/O; [`gateway`] is the thin async shell that runs them
//! in order. This crate never touches the store: it reads the catalog snapshot it is
//! given.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
pub mod authorizer;
pub mod cors;
pub mod gateway;
pub mod metrics;
pub mod payload;
pub mod route;
pub mod throttle;

pub use gateway::{Client, Gateway, GatewayConfig};
pub use metrics::{ApiMetrics, ApiPoint, ApiUsage, Failure};
