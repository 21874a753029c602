//! `shoplake docs`.

use anyhow::Context;

use crate::Exit;
use crate::cli::DocsArgs;

pub fn run(args: &DocsArgs) -> Result<(), Exit> {
    let text = shoplake_lake::dictionary::markdown();
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
