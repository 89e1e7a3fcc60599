//! AES-256-GCM sealing with versioned data keys and bound associated data.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::root::RootKey;
use crate::{Result, VaultError};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;

/// What a ciphertext is bound to. Opening with any other binding fails.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub org: &'a str,
    /// The owning object, e.g. a connection id or `secret:{id}`.
    pub object: &'a str,
    pub field: &'a str,
}

impl Aad<'_> {
    /// Length-prefixed so that no two different bindings encode to the same bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"patchbay/aad/v1");
        for part in [self.org, self.object, self.field] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// The data keys a vault holds, by version, and the one new ciphertexts use.
pub struct Keyring {
    current: u32,
    keys: BTreeMap<u32, Aes256Gcm>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Builds a keyring from unwrapped data keys; the highest version becomes current.
    pub fn new(keys: Vec<(u32, Zeroizing<[u8; 32]>)>) -> Option<Self> {
        let mut map = BTreeMap::new();
        for (version, key) in keys {
            let cipher = Aes256Gcm::new_from_slice(key.as_ref()).ok()?;
            map.insert(version, cipher);
        }
        let current = *map.keys().next_back()?;
        Some(Self { current, keys: map })
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }

    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or(VaultError::UnknownKeyVersion(self.current))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = aad.encode();
        let sealed = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Malformed)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.current.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, aad: &Aad<'_>, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let version = key_version_of(ciphertext).ok_or(VaultError::Malformed)?;
        if ciphertext.len() < HEADER_LEN + TAG_LEN {
            return Err(VaultError::Malformed);
        }
        let cipher = self
            .keys
            .get(&version)
            .ok_or(VaultError::UnknownKeyVersion(version))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&ciphertext[5..HEADER_LEN]);
        let aad = aad.encode();
        cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &ciphertext[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Decrypt)
    }
}

/// The data-key version a ciphertext was sealed with, if it is one of ours.
pub fn key_version_of(ciphertext: &[u8]) -> Option<u32> {
    if ciphertext.len() < HEADER_LEN || ciphertext[0] != FORMAT_V1 {
        return None;
    }
    Some(u32::from_be_bytes([
        ciphertext[1],
        ciphertext[2],
        ciphertext[3],
        ciphertext[4],
    ]))
}

fn dek_aad(version: u32) -> String {
    format!("data-key:{version}")
}

/// Seals a data key under the root key; the result is what the store keeps.
pub fn wrap_data_key(root: &RootKey, version: u32, key: &[u8; 32]) -> Result<Vec<u8>> {
    let ring = root.keyring();
    let object = dek_aad(version);
    ring.seal(
        &Aad {
            org: "",
            object: &object,
            field: "key",
        },
        key,
    )
}

/// Opens a wrapped data key; a different root key fails with [`VaultError::WrongRootKey`].
pub fn unwrap_data_key(
    root: &RootKey,
    version: u32,
    wrapped: &[u8],
) -> Result<Zeroizing<[u8; 32]>> {
    let ring = root.keyring();
    let object = dek_aad(version);
    let plain = ring
        .open(
            &Aad {
                org: "",
                object: &object,
                field: "key",
            },
            wrapped,
        )
        .map_err(|_| VaultError::WrongRootKey(version))?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::Malformed)?;
    Ok(Zeroizing::new(bytes))
}

/// A fresh random data key.
pub fn generate_data_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(versions: &[u32]) -> Keyring {
        Keyring::new(versions.iter().map(|v| (*v, generate_data_key())).collect()).unwrap()
    }

    const A: Aad<'static> = Aad {
        org: "org_a",
        object: "con_1",
        field: "password",
    };

    #[test]
    fn round_trip_carries_the_key_version() {
        let r = ring(&[1, 2]);
        let ct = r.seal(&A, b"hunter2").unwrap();
        assert_eq!(key_version_of(&ct), Some(2));
        assert_eq!(r.open(&A, &ct).unwrap().as_slice(), b"hunter2");
        assert!(!ct.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn nonces_are_fresh() {
        let r = ring(&[1]);
        assert_ne!(r.seal(&A, b"x").unwrap(), r.seal(&A, b"x").unwrap());
    }

    #[test]
    fn another_binding_does_not_open() {
        let r = ring(&[1]);
        let ct = r.seal(&A, b"secret").unwrap();
        for other in [
            Aad { org: "org_b", ..A },
            Aad {
                object: "con_2",
                ..A
            },
            Aad {
                field: "token",
                ..A
            },
        ] {
            assert!(matches!(r.open(&other, &ct), Err(VaultError::Decrypt)));
        }
    }

    #[test]
    fn tampering_and_truncation_are_detected() {
        let r = ring(&[1]);
        let mut ct = r.seal(&A, b"secret").unwrap();
        let last = ct.len() - 1;
        ct[last] ^= 1;
        assert!(matches!(r.open(&A, &ct), Err(VaultError::Decrypt)));
        assert!(matches!(r.open(&A, &ct[..10]), Err(VaultError::Malformed)));
        assert!(matches!(r.open(&A, b""), Err(VaultError::Malformed)));
    }

    #[test]
    fn unknown_versions_are_named() {
        let old = ring(&[7]);
        let ct = old.seal(&A, b"x").unwrap();
        assert!(matches!(
            ring(&[1]).open(&A, &ct),
            Err(VaultError::UnknownKeyVersion(7))
        ));
    }

    #[test]
    fn wrapped_keys_need_the_same_root() {
        let root = RootKey::generate();
        let key = generate_data_key();
        let wrapped = wrap_data_key(&root, 3, &key).unwrap();
        assert_eq!(*unwrap_data_key(&root, 3, &wrapped).unwrap(), *key);
        assert!(matches!(
            unwrap_data_key(&RootKey::generate(), 3, &wrapped),
            Err(VaultError::WrongRootKey(3))
        ));
        // The version is bound too: a wrapped key can't be replayed as another version.
        assert!(unwrap_data_key(&root, 4, &wrapped).is_err());
    }
}
