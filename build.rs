//! Links the system OpenBLAS when the `openblas` feature is on.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some() {
        println!("cargo:rustc-link-lib=dylib=openblas");
    }
}
