//! The vault as the rest of Patchbay sees it: sealed or unsealed, with one keyring that can be
//! swapped when a rotation adds a data-key version.

use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::cipher::{Aad, Keyring};
use crate::{Result, VaultError};

#[derive(Debug)]
enum State {
    Sealed(String),
    Unsealed(Arc<Keyring>),
}

/// Shared by every request; cheap to read.
#[derive(Debug)]
pub struct Vault {
    state: RwLock<State>,
}

impl Vault {
    pub fn sealed(reason: impl Into<String>) -> Self {
        Self {
            state: RwLock::new(State::Sealed(reason.into())),
        }
    }

    pub fn unsealed(keyring: Keyring) -> Self {
        Self {
            state: RwLock::new(State::Unsealed(Arc::new(keyring))),
        }
    }

    /// Replaces the keyring, e.g. after a rotation added a version.
    pub fn install(&self, keyring: Keyring) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = State::Unsealed(Arc::new(keyring));
    }

    pub fn keyring(&self) -> Result<Arc<Keyring>> {
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Sealed(why) => Err(VaultError::Sealed(why.clone())),
            State::Unsealed(ring) => Ok(ring.clone()),
        }
    }

    /// `Some(reason)` while sealed.
    pub fn sealed_reason(&self) -> Option<String> {
        match &*self.state.read().unwrap_or_else(|p| p.into_inner()) {
            State::Sealed(why) => Some(why.clone()),
            State::Unsealed(_) => None,
        }
    }

    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.keyring()?.seal(aad, plaintext)
    }

    pub fn open(&self, aad: &Aad<'_>, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.keyring()?.open(aad, ciphertext)
    }
}
