//! patchbay-cli
fn main() {}
