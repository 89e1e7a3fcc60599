//! `patchbay config example`: the configuration file, made from the settings table.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print a documented configuration file.
    Example,
}

pub fn example() {
    print!("{}", patchbay_server::settings::layer::example());
}
