//! The root key: where it comes from, and the generated key file of the embedded default.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cipher::{Keyring, generate_data_key};
use crate::{Result, VaultError};

/// Where the root key came from, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => f.write_str("PATCHBAY_MASTER_KEY"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
            KeySource::Generated(p) => write!(f, "generated key file {}", p.display()),
        }
    }
}

/// 32 secret bytes that wrap the data keys. `Debug` never shows them.
pub struct RootKey(SecretBox<[u8; 32]>);

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootKey({})", self.fingerprint())
    }
}

impl RootKey {
    pub fn generate() -> Self {
        let key = generate_data_key();
        Self(SecretBox::new(Box::new(*key)))
    }

    /// Parses the base64 form used by `PATCHBAY_MASTER_KEY` and key files.
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| VaultError::RootKey("is not valid base64".into()))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            VaultError::RootKey(format!("must decode to 32 bytes, got {}", bytes.len()))
        })?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.expose_secret()))
    }

    /// Reads a key file holding the base64 key.
    pub fn load_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            VaultError::RootKey(format!("cannot read {}: {}", path.display(), e.kind()))
        })?);
        Self::from_base64(&text)
            .map_err(|e| VaultError::RootKey(format!("{}: {e}", path.display())))
    }

    /// Reads `path`, or creates it with a fresh key and mode 0600 when it does not exist.
    /// Returns whether the key was generated now.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool)> {
        if path.exists() {
            return Ok((Self::load_file(path)?, false));
        }
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |e: std::io::Error| {
            VaultError::RootKey(format!("cannot create {}: {}", path.display(), e.kind()))
        };
        let mut file = options.open(path).map_err(io)?;
        file.write_all(key.to_base64().as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok((key, true))
    }

    /// A short, non-secret name for this key, to tell keys apart in messages.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"patchbay/root-key-fingerprint");
        h.update(self.0.expose_secret());
        hex_prefix(&h.finalize()[..6])
    }

    /// The root key as a one-key keyring, used only to wrap data keys.
    pub(crate) fn keyring(&self) -> Keyring {
        let key = Zeroizing::new(*self.0.expose_secret());
        // A keyring built from one valid 32-byte key always exists.
        Keyring::new(vec![(0, key)]).unwrap_or_else(|| unreachable!("one 32-byte key"))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_length_check() {
        let k = RootKey::generate();
        let back = RootKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k.fingerprint(), back.fingerprint());
        let short = RootKey::from_base64(&STANDARD.encode([0u8; 16])).unwrap_err();
        assert!(short.to_string().contains("32 bytes"), "{short}");
        assert!(RootKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (a, created) = RootKey::load_or_generate(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (b, created) = RootKey::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let k = RootKey::generate();
        let shown = format!("{k:?}");
        assert!(!shown.contains(k.to_base64().as_str()));
    }
}
