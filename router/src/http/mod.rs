//! Thin HTTP handlers: extract, convert, call one domain function, map the result.

pub mod admin;
pub mod error;
pub mod health;
pub mod webhook;
