//! `shoplake docs`.

use anyhow::Context;

use shoplake_lake::dictionary::Guard;

use crate::Exit;
use crate::cli::DocsArgs;

/// The dictionary documents the built-in checks (a project's own `[[checks]]` live in its
/// shoplake.toml, next to the lake, not in the code).
pub fn run(args: &DocsArgs) -> Result<(), Exit> {
    let guards: Vec<Guard> = shoplake_quality::checks::builtin()
        .iter()
        .map(|c| Guard {
            table: c.table.clone(),
            columns: c.kind.columns().iter().map(|s| s.to_string()).collect(),
            text: format!("`{}` ({}): {}", c.name, c.severity, c.kind.describe()),
        })
        .collect();
    let text = shoplake_lake::dictionary::markdown(&guards);
    if args.check {
        let current = std::fs::read_to_string(&args.out).unwrap_or_default();
        if current != text {
            return Err(anyhow::anyhow!(
                "{} is out of date with the table definitions; run `shoplake docs` to regenerate it",
                args.out.display()
            )
            .into());
        }
        println!("{} is up to date", args.out.display());
        return Ok(());
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&args.out, text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
