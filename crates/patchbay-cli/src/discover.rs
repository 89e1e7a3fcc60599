//! Where the CLI finds its server: `--url`/`--token` (or `PATCHBAY_URL`/`PATCHBAY_TOKEN`), else
//! the `cli.json` that `patchbay serve` writes (mode 0600) into the data directory of the
//! embedded default, so that on the same machine no configuration is needed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovered {
    pub url: String,
    pub token: Option<String>,
}

pub const FILE: &str = "cli.json";

/// `$PATCHBAY_DATA_DIR` (via clap), else the platform data directory, else `./.patchbay`.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir().map_or_else(|| PathBuf::from(".patchbay"), |d| d.join("patchbay"))
}

pub fn read(data_dir: &Path) -> Option<Discovered> {
    let text = std::fs::read_to_string(data_dir.join(FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records the server's URL, keeping a token already recorded unless a new one is given.
pub fn write(data_dir: &Path, url: &str, token: Option<&str>) -> Result<()> {
    let previous = read(data_dir).and_then(|d| d.token);
    let record = Discovered {
        url: url.to_owned(),
        token: token.map(str::to_owned).or(previous),
    };
    let path = data_dir.join(FILE);
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(&record)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
