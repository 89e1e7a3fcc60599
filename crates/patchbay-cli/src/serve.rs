//! `patchbay serve` and `patchbay init`: layer the settings, start, and tell the operator the
//! URL, where the data lives, and (on the first run only) the admin token.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use patchbay_server::settings::defs::{DEFS, Def, Ty};
use patchbay_server::settings::layer::Layers;
use patchbay_server::{Application, Settings, init_logging};

use crate::Global;
use crate::discover;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see `patchbay config example`).
    #[arg(long, env = "PATCHBAY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub flags: SettingFlags,
}

/// One flag per setting of the table (`patchbay_server::settings::defs`), the values given.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags {
    given: Vec<(&'static str, Vec<String>)>,
}

fn flag_help(d: &Def) -> String {
    let default = d
        .default
        .map(|v| format!(" [default: {}]", v.trim_matches('"')))
        .unwrap_or_default();
    let what = if d.secret { " (a file holding it)" } else { "" };
    format!("{}{what}{default} [env: {}]", d.help, d.env)
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut s = Self::default();
        s.update_from_arg_matches(m)?;
        Ok(s)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        for d in settings_flags() {
            if d.ty == Ty::Bool && !d.secret {
                if m.get_flag(d.key) {
                    self.given.push((d.key, vec!["true".into()]));
                }
            } else if let Some(values) = m.get_many::<String>(d.key) {
                self.given.push((d.key, values.cloned().collect()));
            }
        }
        Ok(())
    }
}

impl clap::Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        settings_flags().fold(cmd, |cmd, d| {
            let arg = clap::Arg::new(d.key).long(d.flag).help(flag_help(d));
            let arg = match (d.ty, d.secret) {
                (Ty::Bool, false) => arg.action(clap::ArgAction::SetTrue),
                (Ty::List, false) => arg
                    .action(clap::ArgAction::Append)
                    .value_delimiter(',')
                    .value_name("VALUE"),
                (_, true) => arg.value_name("FILE"),
                _ => arg.value_name("VALUE"),
            };
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The settings `patchbay serve` has flags for: all but the data directory, which is the
/// global `--data-dir`.
fn settings_flags() -> impl Iterator<Item = &'static Def> {
    DEFS.iter().filter(|d| d.key != "store.data_dir")
}

/// Defaults, then the file, then `PATCHBAY_*`, then flags.
pub fn settings(args: &ServeArgs, global: &Global) -> Result<Settings> {
    let mut layers = Layers::defaults();
    if let Some(path) = &args.config {
        layers.file(path)?;
    }
    layers.env(|k| std::env::var(k).ok())?;
    if let Some(dir) = &global.data_dir {
        layers.set_flag_text("store.data_dir", &[dir.display().to_string()])?;
    }
    for (key, values) in &args.flags.given {
        layers.set_flag_text(key, values)?;
    }
    Ok(layers.settings(&discover::default_data_dir())?)
}

pub async fn serve(args: ServeArgs, global: &Global, serve: bool) -> Result<()> {
    let mut settings = settings(&args, global)?;
    init_logging(settings.log.format);
    let data_dir = settings.store.data_dir.clone();
    let embedded = settings.store.database_url.is_none();
    let configured = format!("http://{}", settings.http.listen);
    if !serve {
        // `init` prepares the store without taking the port.
        settings.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    }
    let app = Application::build(settings).await?;
    let url = if serve { app.url() } else { configured };
    if serve {
        println!("Patchbay listening on {url}");
    } else {
        println!("Patchbay initialised");
    }
    println!("Store: {}", app.store_location());
    if let Some(note) = app.key_note() {
        println!("Key: {note}");
    }
    if let Some(why) = app.sealed_reason() {
        println!("WARNING: the vault is sealed ({why}); secrets and actions are unavailable");
    }
    if let Some(token) = app.first_run_token() {
        println!("Admin token (shown once, operator of the default organization): {token}");
    }
    if embedded {
        // Lets `patchbay <command>` on this machine find the server without configuration.
        if let Err(e) = discover::write(&data_dir, &url, app.first_run_token()) {
            eprintln!("warning: could not record the server for the CLI: {e:#}");
        } else if app.first_run_token().is_some() {
            println!(
                "The CLI on this machine will use it from {}",
                data_dir.join(discover::FILE).display()
            );
        }
    }
    if !serve {
        return Ok(());
    }
    app.run_until_stopped()
        .await
        .context("server stopped with an error")?;
    Ok(())
}
