//! Signup, login, refresh-token rotation and logout; a person's account and memberships.

use chrono::{Duration, Utc};
use entity::{OrgKind, OrgRole, Plan, organization, organization_member, project_member, user};
use uuid::Uuid;

use crate::auth::jwt::{ACCESS_TOKEN_SECONDS, JwtKeys};
use crate::auth::password::Passwords;
use crate::auth::secret_token;
use crate::error::{AppError, AppResult};
use crate::ids::{SessionFamilyId, UserId};
use crate::input::{Email, Name, Password, Slug};
use crate::tenancy::audit::Origin;
use crate::tenancy::{Db, Page, unscoped};

const REFRESH_TOKEN_DAYS: i64 = 30;
const REFRESH_TOKEN_LEN: usize = 48;

/// Tokens for a signed-in user, with the organization they landed in when it is unambiguous.
pub struct SignedIn {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub user: user::Model,
    pub organization: Option<organization::Model>,
}

pub struct SignupInput<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub display_name: &'a str,
    pub organization_name: &'a str,
}

pub async fn signup(
    db: &Db,
    jwt: &JwtKeys,
    passwords: &Passwords,
    input: SignupInput<'_>,
    origin: &Origin,
) -> AppResult<SignedIn> {
    let email = Email::parse(input.email)?;
    let password = Password::parse(input.password)?;
    let display_name = Name::parse("displayName", input.display_name)?;
    let org_name = Name::parse("organizationName", input.organization_name)?;
    let slug = available_slug(db, Slug::from_name(&org_name)).await?;
    let password_hash = passwords.hash(password.into_inner()).await?;
    let (session, refresh_token) = new_session();
    let family = session.family;
    let (user, org) = unscoped::accounts::create_account(
        db,
        unscoped::accounts::NewUser {
            email: email.into_inner(),
            password_hash,
            display_name: display_name.into_inner(),
        },
        new_organization(org_name, slug),
        session,
        origin,
    )
    .await?;
    signed_in(jwt, user, Some(org), family, refresh_token)
}

pub async fn login(
    db: &Db,
    jwt: &JwtKeys,
    passwords: &Passwords,
    email: &str,
    password: &str,
    origin: &Origin,
) -> AppResult<SignedIn> {
    // A malformed email cannot belong to an account: same answer as a wrong password.
    let user = match Email::parse(email) {
        Ok(email) => unscoped::accounts::find_user_by_email(db, email.as_str()).await?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|user| user.password_hash.clone());
    if !passwords.verify(password.to_owned(), stored).await? {
        return Err(AppError::Unauthenticated);
    }
    let user = user.ok_or(AppError::Unauthenticated)?;
    let organization = only_organization(db, UserId(user.id)).await?;
    let (session, refresh_token) = new_session();
    let family = session.family;
    unscoped::sessions::start_session(db, UserId(user.id), session, origin).await?;
    signed_in(jwt, user, organization, family, refresh_token)
}

/// The sign-in a refresh token would renew, for limiting refreshes per sign-in; `None`
/// for a token that is not ours.
pub async fn refreshing_family(db: &Db, refresh_token: &str) -> AppResult<Option<SessionFamilyId>> {
    unscoped::sessions::session_family_of(db, &secret_token::sha256_hex(refresh_token)).await
}

/// Exchanges a refresh token for a new pair. Presenting a token that was already exchanged
/// revokes the whole chain, ending the sign-in for whoever holds any of its tokens.
pub async fn refresh(db: &Db, jwt: &JwtKeys, refresh_token: &str, origin: &Origin) -> AppResult<SignedIn> {
    let presented_hash = secret_token::sha256_hex(refresh_token);
    let next = secret_token::random_alphanumeric(REFRESH_TOKEN_LEN);
    let (user_id, family) = unscoped::sessions::rotate_session(
        db,
        &presented_hash,
        secret_token::sha256_hex(&next),
        refresh_expiry(),
        origin,
    )
    .await?;
    let user = current_user(db, user_id).await?;
    let organization = only_organization(db, user_id).await?;
    signed_in(jwt, user, organization, family, next)
}

pub async fn logout(db: &Db, user: UserId, family: SessionFamilyId, origin: &Origin) -> AppResult<()> {
    unscoped::sessions::end_session(db, user, family, origin).await
}

/// The signed-in person's account; `UNAUTHENTICATED` once it is gone.
pub async fn current_user(db: &Db, user: UserId) -> AppResult<user::Model> {
    unscoped::accounts::find_user(db, user)
        .await?
        .ok_or(AppError::Unauthenticated)
}

/// Every organization the person belongs to, with their role there, oldest membership first.
pub async fn memberships(db: &Db, user: UserId) -> AppResult<Vec<(organization::Model, OrgRole)>> {
    unscoped::accounts::memberships_of(db, user).await
}

/// A row naming a person: a member of an organization or of a project.
pub trait Membership {
    fn user_id(&self) -> Uuid;
}

impl Membership for organization_member::Model {
    fn user_id(&self) -> Uuid {
        self.user_id
    }
}

impl Membership for project_member::Model {
    fn user_id(&self) -> Uuid {
        self.user_id
    }
}

/// A member with their account, which lives outside the tenant; `None` once it is gone.
pub struct WithAccount<M> {
    pub member: M,
    pub account: Option<user::Model>,
}

pub async fn with_account<M: Membership>(db: &Db, member: M) -> AppResult<WithAccount<M>> {
    let account = unscoped::accounts::find_user(db, UserId(member.user_id())).await?;
    Ok(WithAccount { member, account })
}

/// A page of members with their accounts, read in one statement.
pub async fn with_accounts<M: Membership>(db: &Db, page: Page<M>) -> AppResult<Page<WithAccount<M>>> {
    let ids = page.items.iter().map(Membership::user_id).collect();
    let mut accounts = unscoped::accounts::users_by_ids(db, ids).await?;
    Ok(page.map(|member| WithAccount {
        account: accounts.remove(&member.user_id()),
        member,
    }))
}

/// A new organization owned by `owner`; the slug is derived from the name unless given.
pub async fn create_organization(
    db: &Db,
    owner: UserId,
    name: &str,
    slug: Option<&str>,
    origin: &Origin,
) -> AppResult<organization::Model> {
    let name = Name::parse("name", name)?;
    let slug = match slug {
        Some(slug) => Slug::parse("slug", slug)?,
        None => available_slug(db, Slug::from_name(&name)).await?,
    };
    unscoped::accounts::create_organization(db, owner, new_organization(name, slug), origin).await
}

fn new_organization(name: Name, slug: Slug) -> unscoped::accounts::NewOrganization {
    let plan = Plan::Free;
    unscoped::accounts::NewOrganization {
        name: name.into_inner(),
        slug: slug.into_inner(),
        kind: OrgKind::Client,
        plan,
        monthly_budget_cents: default_budget_cents(plan),
    }
}

/// The monthly budget an organization starts with on each plan.
pub fn default_budget_cents(plan: Plan) -> i64 {
    match plan {
        Plan::Free => 1_000,
        Plan::Starter => 10_000,
        Plan::Pro => 100_000,
        Plan::Enterprise => 1_000_000,
    }
}

/// The derived slug if free, else the same with a short random suffix.
async fn available_slug(db: &Db, derived: Slug) -> AppResult<Slug> {
    if unscoped::accounts::organization_slug_taken(db, derived.as_str()).await? {
        Ok(derived.with_random_suffix())
    } else {
        Ok(derived)
    }
}

async fn only_organization(db: &Db, user: UserId) -> AppResult<Option<organization::Model>> {
    let mut memberships = unscoped::accounts::memberships_of(db, user).await?;
    Ok(if memberships.len() == 1 {
        memberships.pop().map(|(org, _)| org)
    } else {
        None
    })
}

fn refresh_expiry() -> chrono::DateTime<Utc> {
    Utc::now() + Duration::days(REFRESH_TOKEN_DAYS)
}

/// A fresh refresh token in a new family, and the token itself (shown to the client once).
fn new_session() -> (unscoped::sessions::NewSession, String) {
    let refresh_token = secret_token::random_alphanumeric(REFRESH_TOKEN_LEN);
    let session = unscoped::sessions::NewSession {
        family: SessionFamilyId::generate(),
        token_hash: secret_token::sha256_hex(&refresh_token),
        expires_at: refresh_expiry(),
    };
    (session, refresh_token)
}

fn signed_in(
    jwt: &JwtKeys,
    user: user::Model,
    organization: Option<organization::Model>,
    family: SessionFamilyId,
    refresh_token: String,
) -> AppResult<SignedIn> {
    Ok(SignedIn {
        access_token: jwt.issue(UserId(user.id), family)?,
        refresh_token,
        expires_in: ACCESS_TOKEN_SECONDS,
        user,
        organization,
    })
}
