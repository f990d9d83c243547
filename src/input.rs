//! Parse, don't validate: client input becomes these types or a `BAD_USER_INPUT` naming the field.
//! Also the one reader of list-valued settings (`LLM_PRICES`, `ENCRYPTION_KEYS`, …).

use crate::error::{AppError, AppResult};

/// A lower-cased email address of a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The form an address is stored and compared in.
    pub fn normalized(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn parse(raw: &str) -> AppResult<Self> {
        let email = Self::normalized(raw);
        let invalid = || AppError::bad_input("email", "enter a valid email address");
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A password long enough and varied enough to resist guessing.
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> AppResult<Self> {
        let length = raw.chars().count();
        if length < Self::MIN_LEN {
            return Err(AppError::bad_input(
                "password",
                format!("use at least {} characters", Self::MIN_LEN),
            ));
        }
        if length > Self::MAX_LEN {
            return Err(AppError::bad_input(
                "password",
                format!("use at most {} characters", Self::MAX_LEN),
            ));
        }
        let classes = [
            raw.chars().any(|c| c.is_lowercase()),
            raw.chars().any(|c| c.is_uppercase()),
            raw.chars().any(|c| c.is_ascii_digit()),
            raw.chars().any(|c| !c.is_alphanumeric()),
        ];
        let distinct = raw.chars().collect::<std::collections::HashSet<_>>().len();
        if classes.iter().filter(|present| **present).count() < 2 || distinct < 5 {
            return Err(AppError::bad_input(
                "password",
                "mix letters with digits or symbols and avoid repeats",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone)]
pub struct Name(String);

impl Name {
    pub const MAX_LEN: usize = 100;

    pub fn parse(field: &'static str, raw: &str) -> AppResult<Self> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(AppError::bad_input(field, "must not be empty"));
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(AppError::bad_input(
                field,
                format!("use at most {} characters", Self::MAX_LEN),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(AppError::bad_input(field, "must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A URL- and subdomain-safe identifier: 3 to 48 of `a-z`, `0-9` and inner `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    const MIN_LEN: usize = 3;
    const MAX_LEN: usize = 48;

    pub fn parse(field: &'static str, raw: &str) -> AppResult<Self> {
        let slug = raw.trim();
        let shape_ok = slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-')
            && !slug.contains("--");
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&slug.len()) || !shape_ok {
            return Err(AppError::bad_input(
                field,
                "use 3 to 48 lowercase letters, digits and single inner hyphens",
            ));
        }
        Ok(Self(slug.to_owned()))
    }

    /// A slug derived from a name, padded or cut to fit; always valid.
    pub fn from_name(name: &Name) -> Self {
        let mut slug = String::new();
        for c in name.as_str().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        slug.truncate(Self::MAX_LEN - 5);
        let mut slug = slug.trim_end_matches('-').to_owned();
        while slug.len() < Self::MIN_LEN {
            slug.push_str(if slug.is_empty() { "org" } else { "-x" });
        }
        Self(slug)
    }

    /// This slug with a short random suffix, for when the derived one is taken.
    pub fn with_random_suffix(&self) -> Self {
        let suffix = crate::auth::secret_token::random_alphanumeric(4).to_ascii_lowercase();
        Self(format!("{}-{suffix}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Optional free text such as a description: at most 2,000 characters.
pub fn description(raw: Option<&str>) -> AppResult<Option<String>> {
    const MAX_LEN: usize = 2_000;
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > MAX_LEN => Err(AppError::bad_input(
            "description",
            format!("use at most {MAX_LEN} characters"),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// The `key<separator>value` entries of a comma-separated setting, blank ones skipped;
/// `malformed` is the error for an entry without the separator.
pub fn setting_entries<'a>(
    spec: &'a str,
    separator: char,
    malformed: &'static str,
) -> anyhow::Result<Vec<(&'a str, &'a str)>> {
    spec.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .split_once(separator)
                .ok_or_else(|| anyhow::anyhow!(malformed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_from_name_is_always_valid() {
        for name in [
            "Acme Corp",
            "  ÄÖÜ ",
            "a",
            "x".repeat(100).as_str(),
            "--hello--world--",
        ] {
            let slug = Slug::from_name(&Name::parse("name", name).expect("valid name"));
            assert!(
                Slug::parse("slug", slug.as_str()).is_ok(),
                "{name:?} gave {slug:?}"
            );
        }
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "a@b",
            "a @b.com",
            "@b.com",
            "a@.com",
            "a@b..com",
            "a@b.com@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            Email::parse(" Ann@Example.COM ").map(Email::into_inner).ok(),
            Some("ann@example.com".into())
        );
    }

    #[test]
    fn password_needs_length_and_variety() {
        assert!(Password::parse("short1!").is_err());
        assert!(Password::parse("aaaaaaaaaaaa").is_err());
        assert!(Password::parse("abababab12").is_err());
        assert!(Password::parse("correct horse 42").is_ok());
    }
}
