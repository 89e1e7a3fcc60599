//! The gateway's tool names: `{connection}__{tool}` within `[A-Za-z0-9_-]{1,64}`. A name that
//! would break the pattern, run past 64 characters or be produced by two (connection, tool)
//! pairs gets a deterministic shortened form ending in a hash of the connection's id and the
//! tool's name, so two connections never produce the same name and a name does not change
//! while the set of tools stays the same.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The longest tool name clients accept.
pub const MAX_NAME: usize = 64;
/// Between a connection's name and its tool's.
pub const SEPARATOR: &str = "__";

/// One tool of one connection, as the gateway names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    /// Index into the pairs given to [`name_tools`].
    pub index: usize,
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// `text` with every character outside the pattern replaced by `_`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect()
}

/// The hashed form: as much of the cleaned name as fits, `-`, and 10 hex digits of
/// SHA-256(connection id, tool name) (more when `extra` asks).
fn hashed(connection: &str, connection_id: &str, tool: &str, extra: usize) -> String {
    let mut h = Sha256::new();
    h.update(connection_id.as_bytes());
    h.update([0]);
    h.update(tool.as_bytes());
    let digest = hex::encode(h.finalize());
    let tail = &digest[..(10 + extra).min(digest.len())];
    let plain = format!("{}{SEPARATOR}{}", clean(connection), clean(tool));
    let room = MAX_NAME - tail.len() - 1;
    let head: String = plain.chars().take(room).collect();
    format!("{head}-{tail}")
}

/// Names every `(connection name, connection id, tool name)`: the plain `{connection}__{tool}`
/// where it is valid and unique, the hashed form where it is not.
pub fn name_tools(pairs: &[(&str, &str, &str)]) -> Vec<Named> {
    let plain: Vec<String> = pairs
        .iter()
        .map(|(c, _, t)| format!("{c}{SEPARATOR}{t}"))
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for p in &plain {
        *count.entry(p.as_str()).or_default() += 1;
    }
    let mut names: Vec<String> = pairs
        .iter()
        .zip(&plain)
        .map(|((c, id, t), p)| {
            let valid = !p.is_empty() && p.len() <= MAX_NAME && p.chars().all(allowed);
            if valid && count[p.as_str()] == 1 {
                p.clone()
            } else {
                hashed(c, id, t, 0)
            }
        })
        .collect();
    // A hashed name equal to another name (vanishingly rare): longer hashes until none is.
    for extra in 1..=54 {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for n in &names {
            *seen.entry(n.as_str()).or_default() += 1;
        }
        let clashing: Vec<usize> = (0..names.len())
            .filter(|&i| seen[names[i].as_str()] > 1 && names[i] != plain[i])
            .collect();
        if clashing.is_empty() {
            break;
        }
        for i in clashing {
            let (c, id, t) = pairs[i];
            names[i] = hashed(c, id, t, extra);
        }
    }
    names
        .into_iter()
        .enumerate()
        .map(|(index, name)| Named { name, index })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[(&str, &str, &str)]) -> Vec<String> {
        name_tools(pairs).into_iter().map(|n| n.name).collect()
    }

    fn valid(name: &str) -> bool {
        !name.is_empty() && name.len() <= MAX_NAME && name.chars().all(allowed)
    }

    #[test]
    fn plain_names_when_they_fit() {
        assert_eq!(
            names(&[
                ("github", "con_1", "create_issue"),
                ("fs", "con_2", "read-file")
            ]),
            ["github__create_issue", "fs__read-file"]
        );
    }

    #[test]
    fn names_that_break_the_pattern_or_the_length_are_hashed_and_stable() {
        let long = "t".repeat(80);
        let got = names(&[
            ("my tools", "con_1", "echo"),
            ("a", "con_2", &long),
            ("données", "con_3", "lire"),
        ]);
        for n in &got {
            assert!(valid(n), "{n}");
        }
        assert!(got[0].starts_with("my_tools__echo-"), "{}", got[0]);
        assert_eq!(got[1].len(), MAX_NAME);
        assert_eq!(
            got,
            names(&[
                ("my tools", "con_1", "echo"),
                ("a", "con_2", &long),
                ("données", "con_3", "lire"),
            ])
        );
    }

    #[test]
    fn two_connections_never_produce_the_same_name() {
        // The separator inside names, and the same name in two projects.
        let got = names(&[
            ("a__b", "con_1", "c"),
            ("a", "con_2", "b__c"),
            ("tools", "con_3", "echo"),
            ("tools", "con_4", "echo"),
            ("x", "con_5", "y"),
        ]);
        let unique: std::collections::HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{got:?}");
        assert!(got.iter().all(|n| valid(n)));
        assert_eq!(got[4], "x__y", "unaffected names stay plain");
        assert_ne!(got[2], got[3]);
    }
}
