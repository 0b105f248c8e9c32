//! How a GraphQL request becomes an answer, whatever the domain: the front door
//! ([`api`]: one parse per distinct document, shared with the response cache; the guard,
//! limits and cost; execution; error codes and metrics), and the plain renderer that writes a
//! page of listed products as JSON text without a future per field ([`plain`], [`json`]).

pub mod api;
pub mod cost;
mod field_order;
pub mod guard;
pub mod json;
pub mod limits;
pub mod plain;
mod validated;
