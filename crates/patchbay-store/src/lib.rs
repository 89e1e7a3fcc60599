//! patchbay-store
