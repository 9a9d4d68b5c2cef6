//! ZooKeeper leader detection (being written).
