//! `xiaoer token`: access tokens for `serve`'s bearer-token access control.

use clap::Subcommand;
use xiaoer_service::auth::{NewToken, Role};

/// `xiaoer token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an access token: prints it once, with the lines to add to the server's config.
    New {
        /// What the token may do: storefront, helpdesk or admin.
        #[arg(long)]
        role: Role,
        /// Name identifying the caller in the audit log [default: ROLE-<random>].
        #[arg(long)]
        name: Option<String>,
    },
}

/// Runs a token subcommand. Only the hash is ever stored; the token itself
/// exists on this terminal and, from now on, with the client.
pub fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::New { role, name } => {
            let made = NewToken::generate(role, name.as_deref())?;
            print!("{}", made.instructions());
            Ok(())
        }
    }
}
