//! Fuzzes the image layer unpacker; see ../check_image.rs.
#![no_main]

#[path = "../check_image.rs"]
mod check_image;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_image::check_layer(data);
});
