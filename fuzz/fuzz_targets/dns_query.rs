//! Fuzzes the DNS server's query parsing and answers, subnets and CNI
//! configurations; see ../check_dns.rs.
#![no_main]

#[path = "../check_dns.rs"]
mod check_dns;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_dns::check(data);
});
