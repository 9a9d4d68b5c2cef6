//! The compose model and parser of m3s.
//!
//! [`load`] reads one or more compose files (compose specification, 2.x and 3.x
//! files) into a typed [`Project`]: YAML through serde-saphyr (merge keys,
//! positions), interpolation from an [`Env`], typing of the common keys, and
//! diagnostics that name file, line, column and key path.

pub mod error;
pub mod interp;
pub mod load;
pub mod model;
pub mod node;
pub mod normalize;

pub use error::{Diagnostic, Errors, Pos, Warnings};
pub use interp::Env;
pub use load::{LoadOptions, SourceFile, load, load_files, parse_constraint, parse_dotenv};
pub use model::*;
pub use normalize::normalize;
