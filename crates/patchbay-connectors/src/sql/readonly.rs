//! What may run under `read_only` on MySQL and MariaDB. Their read-only transactions refuse
//! row changes but not DDL (which commits implicitly and runs outside the transaction), nor a
//! `SELECT … INTO OUTFILE`, so a statement is first classified here: it must open with a
//! reading verb, name no server file to write, be a single statement, and carry no executable
//! comment (`/*! … */`, `/*M! … */`, whose text the server runs). The read-only session and
//! transaction then hold for everything a reading verb can still reach (stored functions,
//! `WITH … DELETE` on MySQL 8).

/// Verbs that only read.
const READING: &[&str] = &[
    "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "TABLE",
];

/// Why `query` may not run under `read_only` on MySQL or MariaDB, if it may not.
pub(crate) fn refusal(query: &str) -> Option<String> {
    let words = match words(query) {
        Ok(w) => w,
        Err(why) => return Some(why),
    };
    let Some(first) = words.first() else {
        return Some("the statement is empty".into());
    };
    if !READING.contains(&first.as_str()) {
        return Some(format!(
            "{first} statements do not run under read_only on MySQL and MariaDB; only {} do",
            READING.join(", ")
        ));
    }
    if let Some(w) = words
        .windows(2)
        .find(|w| w[0] == "INTO" && (w[1] == "OUTFILE" || w[1] == "DUMPFILE"))
    {
        return Some(format!(
            "INTO {} writes a file on the database server, which read_only does not allow",
            w[1]
        ));
    }
    None
}

/// The statement's bare words, upper-cased, outside strings, quoted names and comments; an
/// error for what the classification cannot vouch for.
fn words(query: &str) -> Result<Vec<String>, String> {
    let b = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut ended = false;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#'
            || (c == b'-'
                && next == Some(b'-')
                && b.get(i + 2)
                    .is_none_or(|d| d.is_ascii_whitespace() || d.is_ascii_control()))
        {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            let body = &b[i + 2..];
            if body.first() == Some(&b'!') || body.starts_with(b"M!") {
                return Err(
                    "executable comments (/*! … */) are not allowed under read_only".into(),
                );
            }
            match find(body, b"*/") {
                Some(end) => i += 2 + end + 2,
                None => return Err("the statement has an unterminated comment".into()),
            }
            continue;
        }
        if ended {
            return Err("only one statement runs at a time".into());
        }
        match c {
            b'\'' | b'"' | b'`' => i = skip_quoted(b, i)?,
            b';' => {
                ended = true;
                i += 1;
            }
            _ if is_word(c) => {
                let start = i;
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                out.push(query[start..i].to_ascii_uppercase());
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The index just past the quoted run starting at `start` (backslash escapes and doubled
/// quotes both kept inside).
fn skip_quoted(b: &[u8], start: usize) -> Result<usize, String> {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Ok(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    Err("the statement has an unterminated quote".into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn reading_statements_pass() {
        for q in [
            "SELECT 1",
            "  select * from t where a = ? ",
            "(SELECT 1) UNION (SELECT 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SHOW TABLES",
            "DESCRIBE t",
            "EXPLAIN SELECT * FROM t",
            "SELECT 'DROP TABLE t; INTO OUTFILE' AS s",
            "SELECT `into` FROM t -- INTO OUTFILE\n",
            "/* a comment */ SELECT 1;",
            "SELECT 'it''s', \"a\\\"b\" # trailing",
            "SELECT a INTO @v FROM t",
        ] {
            assert_eq!(refusal(q), None, "{q}");
        }
    }

    #[test]
    fn writes_ddl_and_tricks_are_refused() {
        for (q, says) in [
            ("TRUNCATE t", "TRUNCATE statements"),
            ("ALTER TABLE t ADD c INT", "ALTER statements"),
            ("RENAME TABLE t TO u", "RENAME statements"),
            ("drop table t", "DROP statements"),
            ("CREATE TABLE u (a INT)", "CREATE statements"),
            ("INSERT INTO t VALUES (1)", "INSERT statements"),
            (
                "SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(8)",
                "SET statements",
            ),
            ("CALL p()", "CALL statements"),
            ("/*!DROP TABLE t*/", "executable comments"),
            ("/*M!100000 DROP TABLE t */ SELECT 1", "executable comments"),
            ("SELECT 1 /*! , (SELECT 1) */", "executable comments"),
            ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
            ("SELECT 1 INTO dumpfile '/tmp/x'", "INTO DUMPFILE"),
            ("SELECT 1; DROP TABLE t", "one statement"),
            ("SELECT 'unterminated", "unterminated quote"),
            ("SELECT 1 /* open", "unterminated comment"),
            ("  -- only a comment\n", "empty"),
        ] {
            let why = refusal(q).unwrap_or_else(|| panic!("{q} passed"));
            assert!(why.contains(says), "{q}: {why}");
        }
    }
}
