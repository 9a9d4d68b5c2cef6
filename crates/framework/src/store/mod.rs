//! The framework's state store: an embedded redb file by default, Redis when configured.
