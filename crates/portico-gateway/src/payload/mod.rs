//! Lambda proxy payload formats: the event API Gateway sends a function for a request
//! and how it reads the function's answer back into an HTTP response.
//!
//! Each format is one submodule owning its JSON shapes (the wire format is AWS's, see
//! "Create AWS Lambda proxy integrations for HTTP APIs"). Both directions are pure
//! functions over bytes and borrowed request parts; nothing here does I/O.

pub mod v2;
