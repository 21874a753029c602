//! `shoplake users`: the users file `serve` checks logins against.

use std::io::{BufRead, IsTerminal, Write};

use shoplake_serve::users::{Users, add_user};

use crate::cli::{UsersArgs, UsersCommand};
use crate::{Exit, usage};

pub fn run(args: &UsersArgs) -> Result<(), Exit> {
    match &args.command {
        UsersCommand::Add { name, role, file } => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprint!("password for {name} (the input is shown; end with Enter): ");
                let _ = std::io::stderr().flush();
            }
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                return Err(usage(anyhow::anyhow!(
                    "no password: give it on the first line of standard input (echo ... | shoplake users add {name} --role {role})"
                )));
            }
            add_user(file, name, role, password).map_err(usage)?;
            println!(
                "{name} ({role}) written to {} (SCRAM-SHA-256 verifier; the password itself is not kept)",
                file.display()
            );
            Ok(())
        }
        UsersCommand::List { file } => {
            let users = Users::load(file).map_err(usage)?;
            let mut out = std::io::stdout().lock();
            for user in users.iter() {
                let mut sees: Vec<String> =
                    user.role.schemas.iter().map(|s| format!("{s}.*")).collect();
                sees.extend(user.role.tables.iter().cloned());
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    user.name,
                    user.role.name,
                    sees.join(", ")
                )?;
            }
            Ok(())
        }
    }
}
