//! Link options for the `shoplake` binary.
//!
//! Every `shoplake query` is a new process, so start-up is part of every answer. The binary
//! is position-independent (address randomisation stays on) and carries about 290,000
//! relative relocations: as RELA entries they are a 7 MB table that the loader reads and
//! applies before `main`. Packed as RELR (a bitmap of the same relocations, 80 KB) they cost
//! the loader next to nothing, and a `SELECT 1` process starts markedly faster (see
//! bench/results/2026-11-29-66600000-at-a9ff606.md). Linkers that do not know the option
//! ignore it with a warning; GNU ld and lld only pack the relocations when the C library can
//! load them (glibc 2.36 and later).

fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
