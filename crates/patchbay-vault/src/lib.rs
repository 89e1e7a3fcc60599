//! The vault: envelope encryption of every secret Patchbay stores (SPEC §4, Encryption at rest).
//!
//! A 32-byte *root key* (from `PATCHBAY_MASTER_KEY`, a key file, or a generated key file) wraps
//! versioned *data keys*; data keys seal secret values with AES-256-GCM and a fresh random nonce.
//! Every ciphertext starts with its data-key version, and its associated data binds it to the
//! organization, the object and the field it belongs to, so a ciphertext copied into another row
//! does not open. This crate does no storage: wrapped data keys are kept by the store, and the
//! engine hands them over at start-up. It is the only place where ciphertext is opened.

mod cipher;
mod root;
mod vault;

pub use cipher::{Aad, Keyring, generate_data_key, key_version_of, unwrap_data_key, wrap_data_key};
pub use root::{KeySource, RootKey};
pub use vault::Vault;

/// Why a vault operation failed. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the vault is sealed: {0}")]
    Sealed(String),
    #[error("ciphertext uses key version {0}, which this vault does not hold")]
    UnknownKeyVersion(u32),
    #[error("ciphertext is malformed")]
    Malformed,
    #[error(
        "ciphertext does not open with this key for this object and field \
         (tampered, or copied from another row)"
    )]
    Decrypt,
    #[error("root key: {0}")]
    RootKey(String),
    #[error("data key version {0} does not unwrap with this root key")]
    WrongRootKey(u32),
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;
