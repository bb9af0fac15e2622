//! Code shared by the example servers (included with `#[path]`; not an example itself).

pub mod cli;
pub mod kv_protocol;
