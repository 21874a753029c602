//! How the `shoplake` binary is linked (see `build.rs`).

use std::process::Command;

/// Sizes of the ELF sections named `name` in the binary, from `readelf` (binutils, which the
/// build's C toolchain brings).
fn section_sizes(name: &str) -> Vec<u64> {
    let out = Command::new("readelf")
        .args(["-S", "-W", env!("CARGO_BIN_EXE_shoplake")])
        .output()
        .expect("readelf runs (binutils is part of the C toolchain the build needs)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter_map(|line| {
            // "  [10] .relr.dyn  RELR  0000000000003d38 003d38 0133e0 08 A 0 0 8"
            let fields: Vec<&str> = line.split_once(']')?.1.split_whitespace().collect();
            (fields.first() == Some(&name)).then(|| u64::from_str_radix(fields[4], 16).unwrap())
        })
        .collect()
}

/// The C library's version, from `ldd --version` ("ldd (Debian GLIBC 2.36-9+deb12u14) 2.36").
fn glibc_version() -> (u32, u32) {
    let out = Command::new("ldd")
        .arg("--version")
        .output()
        .expect("ldd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    let version = first.rsplit(' ').next().unwrap_or_default();
    let (major, minor) = version
        .split_once('.')
        .unwrap_or_else(|| panic!("no glibc version in {first:?}"));
    (major.parse().unwrap(), minor.parse().unwrap())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn relative_relocations_are_packed_so_the_process_starts_sooner() {
    // The linker packs them only when the C library can load them (glibc 2.36, Debian 12,
    // Ubuntu 22.10); on an older one the binary is linked as before, and works.
    if glibc_version() < (2, 36) {
        eprintln!("glibc before 2.36: relocations cannot be packed here");
        return;
    }
    let relr = section_sizes(".relr.dyn");
    assert_eq!(
        relr.len(),
        1,
        "no .relr.dyn section: the relocations are not packed (GNU ld 2.38 or lld 15 needed)"
    );
    // Unpacked, the relative relocations are a table of several megabytes; what is left in
    // .rela.dyn are the few that RELR cannot express.
    let rela: u64 = section_sizes(".rela.dyn").iter().sum();
    assert!(rela < 1 << 20, ".rela.dyn holds {rela} bytes");
}
