//! Tests of the assembled application that need no adapter: the committed spec, routing, parameter
//! parsing and the problem bodies of refused requests.

mod routing;
mod spec;
