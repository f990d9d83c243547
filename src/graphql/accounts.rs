//! Signup, login, sessions and the signed-in user.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use entity::user;

use crate::domain::accounts::{self, SignedIn, SignupInput};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::UserGuard;
use crate::graphql::organizations::{OrgRole, Organization};
use crate::ids::UserId;

#[derive(InputObject)]
#[graphql(name = "SignupInput")]
pub struct SignupInputGql {
    pub email: String,
    pub password: String,
    pub display_name: String,
    pub organization_name: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    /// Exchange with `refreshSession` before the access token expires; single use.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
    /// The organization the user works in, when they belong to exactly one.
    pub organization: Option<Organization>,
}

impl From<SignedIn> for AuthPayload {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.access_token,
            refresh_token: signed_in.refresh_token,
            expires_in: signed_in.expires_in,
            user: signed_in.user.into(),
            organization: signed_in.organization.map(Organization::from),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    id: ID,
    email: String,
    display_name: String,
    is_platform_admin: bool,
    #[graphql(skip)]
    user: UserId,
}

impl From<user::Model> for User {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id.into(),
            email: user.email,
            display_name: user.display_name,
            is_platform_admin: user.is_platform_admin,
            user: UserId(user.id),
        }
    }
}

#[ComplexObject]
impl User {
    /// Every organization this user belongs to, with their role there.
    async fn memberships(&self, ctx: &Context<'_>) -> Result<Vec<Membership>> {
        let memberships = accounts::memberships(&ctx.services().db, self.user).await?;
        Ok(memberships
            .into_iter()
            .map(|(org, role)| Membership {
                organization: org.into(),
                role: role.into(),
            })
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct Membership {
    pub organization: Organization,
    pub role: OrgRole,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user.
    #[graphql(guard = "UserGuard")]
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let user = accounts::current_user(&ctx.services().db, ctx.user()?.id).await?;
        Ok(user.into())
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and its first organization, owned by the new user.
    async fn signup(&self, ctx: &Context<'_>, input: SignupInputGql) -> Result<AuthPayload> {
        ctx.charge_auth_attempt().await?;
        let services = ctx.services();
        let input = SignupInput {
            email: &input.email,
            password: &input.password,
            display_name: &input.display_name,
            organization_name: &input.organization_name,
        };
        Ok(accounts::signup(
            &services.db,
            &services.jwt,
            &services.passwords,
            input,
            &ctx.origin(),
        )
        .await?
        .into())
    }

    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        ctx.charge_auth_attempt().await?;
        let services = ctx.services();
        services.rate_limits.charge_account_signin(&input.email).await?;
        Ok(accounts::login(
            &services.db,
            &services.jwt,
            &services.passwords,
            &input.email,
            &input.password,
            &ctx.origin(),
        )
        .await?
        .into())
    }

    /// Exchanges a refresh token for a new pair. Reusing an exchanged token ends the sign-in.
    /// Limited per sign-in (a web app's server refreshes for all its users from one
    /// address); a token that is not ours counts against the client address instead.
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let services = ctx.services();
        match accounts::refreshing_family(&services.db, &refresh_token).await? {
            Some(family) => services.rate_limits.charge_session_refresh(family.0).await?,
            None => ctx.charge_auth_attempt().await?,
        }
        Ok(
            accounts::refresh(&services.db, &services.jwt, &refresh_token, &ctx.origin())
                .await?
                .into(),
        )
    }

    /// Revokes the current sign-in's refresh tokens.
    #[graphql(guard = "UserGuard")]
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let user = ctx.user()?;
        accounts::logout(&ctx.services().db, user.id, user.session_family, &ctx.origin()).await?;
        Ok(true)
    }
}
