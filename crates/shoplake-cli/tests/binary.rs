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

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn relative_relocations_are_packed_so_the_process_starts_sooner() {
    let relr = section_sizes(".relr.dyn");
    assert_eq!(
        relr.len(),
        1,
        "no .relr.dyn section: the relocations are not packed"
    );
    // Unpacked, the relative relocations are a table of several megabytes; what is left in
    // .rela.dyn are the few that RELR cannot express.
    let rela: u64 = section_sizes(".rela.dyn").iter().sum();
    assert!(rela < 1 << 20, ".rela.dyn holds {rela} bytes");
}
