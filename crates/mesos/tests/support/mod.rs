pub mod fake_master;
pub mod zookeeper;
