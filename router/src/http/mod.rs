//! Thin HTTP handlers: extract, convert, call one domain function, map the result.

pub mod admin;
pub mod agents;
pub mod auth;
pub mod calls;
pub mod error;
pub mod health;
pub mod webhook;
pub mod ws;
