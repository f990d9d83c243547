//! The one list of columns that hold ciphertexts (`integrations::crypto`): the start-up
//! check and key rotation both follow it, so a new encrypted column is added here, with its
//! binding, or not at all.

/// A column holding ciphertexts. Every table in this list has `id`, `organization_id` and
/// `updated_at`; the row's organization and id are what its ciphertexts are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// The row's tenant, part of the associated data.
    pub organization: &'static str,
    /// The row's id.
    pub id: &'static str,
    /// Rows that are read once and then never again: a pending OAuth state, spent once
    /// `used_at` is set or `expires_at` has passed. Rotation deletes spent rows instead of
    /// re-encrypting them, and the start-up check looks at pending ones only.
    pub single_use: bool,
}

impl SealedColumn {
    const fn new(table: &'static str, column: &'static str, single_use: bool) -> Self {
        Self {
            table,
            column,
            organization: "organization_id",
            id: "id",
            single_use,
        }
    }
}

/// An organization's secret for a provider (`setProviderCredential`).
pub const PROVIDER_SECRET: SealedColumn = SealedColumn::new("provider_credentials", "secret", false);
/// A connected account's OAuth access token.
pub const ACCESS_TOKEN: SealedColumn = SealedColumn::new("integrations", "access_token", false);
/// A connected account's OAuth refresh token (nullable).
pub const REFRESH_TOKEN: SealedColumn = SealedColumn::new("integrations", "refresh_token", false);
/// A pending OAuth authorization's PKCE verifier.
pub const PKCE_VERIFIER: SealedColumn = SealedColumn::new("oauth_states", "pkce_verifier", true);

/// Every column that holds ciphertexts.
pub const SEALED_COLUMNS: [SealedColumn; 4] = [PROVIDER_SECRET, ACCESS_TOKEN, REFRESH_TOKEN, PKCE_VERIFIER];
