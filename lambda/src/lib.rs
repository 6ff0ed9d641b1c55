//! CloudFormation custom resource that builds Cloud Exchange's directory tree on EFS.
//!
//! The flow is plain functions over plain data — validate properties ([`spec`]) →
//! look at existing TLS material and issue what is missing or due ([`certs`]) →
//! reconcile the tree ([`tree`]) → build and deliver the response ([`response`]) — with
//! [`handler`] tying them together under a deadline guard so that every invocation ends
//! in exactly one response to CloudFormation.

pub mod certs;
pub mod handler;
pub mod response;
pub mod spec;
pub mod tree;
