//! patchbay-vault
