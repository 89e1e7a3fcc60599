//! patchbay-engine
