//! patchbay-client
