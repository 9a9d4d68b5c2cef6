//! recordio
