//! The compose model and parser of m3s.
//!
//! [`load()`] reads one or more compose files (compose specification, 2.x and 3.x
//! files) into a typed [`Project`]: YAML through serde-saphyr (merge keys,
//! positions), interpolation from an [`Env`], typing of the common keys, and
//! diagnostics that name file, line, column and key path. [`load_files`] reads
//! a project from disk with [`LoadOptions`]: `.env`, `env_file`, profiles,
//! `extends`, `include`, several files merged by the specification's rules, and
//! `strict` (warnings are errors).
//!
//! Besides the shape of each key, a load checks meaning: `depends_on` naming an
//! unknown or disabled service, dependency cycles, undeclared volumes, networks,
//! secrets and configs, a host port published twice in one service, and
//! `container_name` with more than one replica are errors; several replicas with
//! a fixed host port is a warning (one node can run only one). Mesos-compose's
//! keys (`container_type`, `arguments`, `shell`, the `mesos:` block, placement
//! constraints and attributes) are typed as well; [`normalize()`] renders a
//! project as one self-contained document.

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
