//! Fuzzes the reading of a Dockerfile's base images (`image::build::base_images`);
//! see ../check_image.rs.
#![no_main]

#[path = "../check_image.rs"]
mod check_image;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check_image::check_dockerfile(data);
});
