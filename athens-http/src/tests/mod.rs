//! Tests of the assembled application that need no adapter: the committed spec, routing, parameter
//! parsing and the problem bodies of refused requests; and the cross-check of the project document
//! the API serves with the one athens-es maps and stores.

mod document;
mod routing;
mod spec;
