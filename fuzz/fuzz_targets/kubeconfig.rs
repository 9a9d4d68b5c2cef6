//! Fuzzes the K3s framework's kubeconfig reader; see ../check_kubeconfig.rs.
#![no_main]

#[path = "../check_kubeconfig.rs"]
mod check_kubeconfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_kubeconfig::check_kubeconfig(data);
});
