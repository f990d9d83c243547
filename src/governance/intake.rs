//! Document intake: every GraphQL text (POST, GET, websocket, APQ, trusted documents, the
//! manifest) is measured here, by a flat scan of its tokens, before any parser sees it. The
//! parser recurses once per nesting level, so a document nested thousands of levels deep
//! would overflow its thread's stack; here it is refused with a `QUERY_TOO_COMPLEX` error
//! naming the limit. Aliases are counted here too: lexically an alias is a name followed
//! by `:` where every open bracket is a selection set's `{`.

use crate::error::AppError;

/// Bounds on a document's text, checked before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Deepest nesting of `{`, `[` and `(`, selections and values alike.
    pub max_nesting: usize,
    /// Most lexical tokens (names, punctuators, numbers, strings).
    pub max_tokens: usize,
    /// Most directives (`@…`) in the whole document.
    pub max_directives: usize,
    /// Most aliased fields in the whole document: aliases multiply work without depth.
    pub max_aliases: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            max_nesting: 64,
            max_tokens: 15_000,
            max_directives: 50,
            max_aliases: 30,
        }
    }
}

/// What the scan counted; it stops at the first limit exceeded.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    deepest: usize,
    tokens: usize,
    directives: usize,
    aliases: usize,
}

impl DocumentLimits {
    /// Refuses a document over any limit, naming the limit; says nothing of its syntax,
    /// which the parser checks afterwards.
    pub fn check(&self, document: &str) -> Result<(), AppError> {
        scan(document, self).map(|_| ())
    }
}

fn refuse(what: &str, limit: usize) -> AppError {
    AppError::QueryTooComplex(
        format!("the document has more than {limit} {what}; refused before parsing").into(),
    )
}

fn scan(document: &str, limits: &DocumentLimits) -> Result<Counts, AppError> {
    let bytes = document.as_bytes();
    let mut counts = Counts::default();
    // Open brackets, innermost last; only `{`, `[` and `(` are pushed.
    let mut open: Vec<u8> = Vec::new();
    // How many of them are `(` or `[`: inside those, `name:` is an argument, not an alias.
    let mut in_values = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                at += 1;
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
                continue;
            }
            b'"' => at = skip_string(bytes, at),
            b'{' | b'[' | b'(' => {
                open.push(byte);
                if byte != b'{' {
                    in_values += 1;
                }
                counts.deepest = counts.deepest.max(open.len());
                if open.len() > limits.max_nesting {
                    return Err(refuse("levels of nesting", limits.max_nesting));
                }
                at += 1;
            }
            b'}' | b']' | b')' => {
                if let Some(opened) = open.pop()
                    && opened != b'{'
                {
                    in_values -= 1;
                }
                at += 1;
            }
            b'@' => {
                counts.directives += 1;
                if counts.directives > limits.max_directives {
                    return Err(refuse("directives", limits.max_directives));
                }
                at += 1;
            }
            b'.' if bytes[at..].starts_with(b"...") => at += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                while at < bytes.len() && (bytes[at] == b'_' || bytes[at].is_ascii_alphanumeric()) {
                    at += 1;
                }
                if !open.is_empty() && in_values == 0 && next_significant(bytes, at) == Some(b':') {
                    counts.aliases += 1;
                    if counts.aliases > limits.max_aliases {
                        return Err(refuse("aliases", limits.max_aliases));
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                at += 1;
                while at < bytes.len()
                    && (bytes[at].is_ascii_alphanumeric() || matches!(bytes[at], b'.' | b'+' | b'-'))
                {
                    at += 1;
                }
            }
            // Other punctuators, and anything the parser will reject, count one token each.
            _ => at += 1,
        }
        counts.tokens += 1;
        if counts.tokens > limits.max_tokens {
            return Err(refuse("tokens", limits.max_tokens));
        }
    }
    Ok(counts)
}

/// The index just past the string starting at `start` (a `"…"` or a `"""…"""` block).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut at = start + 3;
        while at < bytes.len() {
            if bytes[at..].starts_with(b"\\\"\"\"") {
                at += 4;
            } else if bytes[at..].starts_with(b"\"\"\"") {
                return at + 3;
            } else {
                at += 1;
            }
        }
        return at;
    }
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            // A line break ends an unterminated string; the parser reports it.
            b'\n' | b'\r' => return at,
            _ => at += 1,
        }
    }
    at
}

/// The next byte that is not whitespace, a comma or part of a comment.
fn next_significant(bytes: &[u8], mut at: usize) -> Option<u8> {
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => at += 1,
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
            }
            other => return Some(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(limits: &DocumentLimits, document: &str) -> String {
        limits.check(document).unwrap_err().to_string()
    }

    fn counts(document: &str) -> Counts {
        scan(
            document,
            &DocumentLimits {
                max_nesting: usize::MAX,
                max_tokens: usize::MAX,
                max_directives: usize::MAX,
                max_aliases: usize::MAX,
            },
        )
        .unwrap()
    }

    #[test]
    fn tokens_nesting_directives_and_aliases_are_counted() {
        let document = r#"
            # a comment { [ ( @ x: y
            query Q($first: Int = 10, $filter: Filter = { a: [1, 2] }) @live {
              a: projects(first: $first, where: { name: "x: {", tags: ["@"] }) {
                edges { node { id b : name @include(if: true) } }
              }
              ...F
            }
            fragment F on QueryRoot { c: me { id description(text: """ a " { ( """) } }
        "#;
        let counted = counts(document);
        assert_eq!(
            counted.aliases, 3,
            "a, b and c; not the arguments or the object fields"
        );
        assert_eq!(
            counted.directives, 2,
            "@live and @include; not the @ in a string or comment"
        );
        assert_eq!(counted.deepest, 5);
        assert!(counted.tokens > 60 && counted.tokens < 120, "{}", counted.tokens);
    }

    #[test]
    fn every_limit_is_refused_before_parsing_and_named() {
        let limits = DocumentLimits::default();
        let deep_list = format!("{{ f(a: {}1{}) }}", "[".repeat(5_000), "]".repeat(5_000));
        let deep_selection = format!("{}{}", "{ a ".repeat(5_000), "}".repeat(5_000));
        let deep_object = format!("{{ f(a: {}1{}) }}", "{b: ".repeat(5_000), "}".repeat(5_000));
        let deep_unclosed = "(".repeat(100_000);
        for document in [&deep_list, &deep_selection, &deep_object, &deep_unclosed] {
            let error = limits.check(document).unwrap_err();
            assert_eq!(error.code(), "QUERY_TOO_COMPLEX");
            assert!(error.to_string().contains("64 levels of nesting"), "{error}");
        }
        let directives = format!("{{ me {} {{ id }} }}", "@skip(if: false) ".repeat(500));
        assert!(refusal(&limits, &directives).contains("50 directives"));
        let aliases = format!(
            "{{ {} }}",
            (0..31).map(|n| format!("a{n}: me {{ id }}")).collect::<String>()
        );
        assert!(refusal(&limits, &aliases).contains("30 aliases"));
        let tokens = format!("{{ {} }}", "me { id } ".repeat(4_000));
        assert!(refusal(&limits, &tokens).contains("15000 tokens"));
        // At the limits, the document passes.
        let at_limit = format!("{}{}", "{ a ".repeat(64), "}".repeat(64));
        assert!(limits.check(&at_limit).is_ok());
    }

    #[test]
    fn unterminated_strings_and_stray_bytes_end_the_scan() {
        assert!(DocumentLimits::default().check("{ f(a: \"unterminated").is_ok());
        assert!(
            DocumentLimits::default()
                .check("{ f(a: \"\"\"unterminated")
                .is_ok()
        );
        assert!(DocumentLimits::default().check("\u{feff}{ é ✓ }").is_ok());
        assert_eq!(
            counts("\"\\\"\" x").tokens,
            2,
            "an escaped quote does not end the string"
        );
    }
}
