//! HS256 access tokens: 15 minutes, with issuer, audience, not-before and expiry checked.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::ids::{SessionFamilyId, UserId};

pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
const ISSUER: &str = "tenantql";
const AUDIENCE: &str = "tenantql-api";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    /// The refresh-token family this access token was issued with, so logout can end it.
    sid: Uuid,
    iss: String,
    aud: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// What a valid access token says.
#[derive(Debug, Clone, Copy)]
pub struct AccessClaims {
    pub user: UserId,
    pub session_family: SessionFamilyId,
    pub expires_at: DateTime<Utc>,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256 is accepted: a token naming any other algorithm (including "none") fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    pub fn issue(&self, user: UserId, session_family: SessionFamilyId) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.0,
            sid: session_family.0,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_SECONDS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Any failure (bad signature, wrong algorithm, expired, wrong audience…) is the same
    /// `UNAUTHENTICATED`: the reason is not told to the caller.
    pub fn verify(&self, token: &str) -> AppResult<AccessClaims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AppError::Unauthenticated)?;
        let expires_at = DateTime::from_timestamp(data.claims.exp, 0).ok_or(AppError::Unauthenticated)?;
        Ok(AccessClaims {
            user: UserId(data.claims.sub),
            session_family: SessionFamilyId(data.claims.sid),
            expires_at,
        })
    }
}
