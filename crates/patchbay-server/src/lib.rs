//! patchbay-server
