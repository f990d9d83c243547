//! The active organization and its members. What also reads members' accounts, which live
//! outside the tenant, takes the `Tenant` and reads them after its transaction.

use chrono::Utc;
use entity::{OrgRole, api_key, organization, organization_member, project_member};
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::domain::accounts::{self, WithAccount};
use crate::domain::api_keys;
use crate::error::{AppError, AppResult, duplicate_as};
use crate::ids::UserId;
use crate::input::{Email, Name, Slug};
use crate::tenancy::{Db, Page, PageRequest, Scoped, Tenant, unscoped};

pub async fn current(scoped: &Scoped) -> AppResult<organization::Model> {
    scoped
        .get::<organization::Entity>(scoped.context().org.0, "organization")
        .await
}

pub struct OrganizationChanges<'a> {
    pub name: Option<&'a str>,
    pub slug: Option<&'a str>,
}

pub async fn update(scoped: &Scoped, changes: OrganizationChanges<'_>) -> AppResult<organization::Model> {
    let mut org = current(scoped).await?.into_active_model();
    if let Some(name) = changes.name {
        org.name = Set(Name::parse("name", name)?.into_inner());
    }
    if let Some(slug) = changes.slug {
        org.slug = Set(Slug::parse("slug", slug)?.into_inner());
    }
    org.updated_at = Set(Utc::now());
    scoped
        .update(org, "organization")
        .await
        .map_err(duplicate_as("slug", "this slug is already taken"))
}

/// A page of the organization's members, with their accounts.
pub async fn members(
    tenant: &Tenant,
    db: &Db,
    page: PageRequest,
) -> AppResult<Page<WithAccount<organization_member::Model>>> {
    let page = tenant
        .read(async |scoped| {
            scoped
                .page(scoped.select::<organization_member::Entity>(), page)
                .await
        })
        .await?;
    accounts::with_accounts(db, page).await
}

pub async fn find_member(scoped: &Scoped, user: UserId) -> AppResult<Option<organization_member::Model>> {
    scoped.find_by(organization_member::Column::UserId, user.0).await
}

async fn get_member(scoped: &Scoped, user: UserId) -> AppResult<organization_member::Model> {
    find_member(scoped, user)
        .await?
        .ok_or(AppError::NotFound("member"))
}

/// Nobody grants a role above their own.
fn check_grant(scoped: &Scoped, role: OrgRole) -> AppResult<()> {
    if role > scoped.context().role {
        return Err(AppError::forbidden("you cannot grant a role above your own"));
    }
    Ok(())
}

/// Nobody changes or removes a member who outranks them.
fn check_outranks(scoped: &Scoped, member: &organization_member::Model) -> AppResult<()> {
    if member.role > scoped.context().role {
        return Err(AppError::forbidden(
            "you cannot change a member whose role is above yours",
        ));
    }
    Ok(())
}

/// An organization always keeps at least one owner.
async fn check_not_last_owner(scoped: &Scoped, member: &organization_member::Model) -> AppResult<()> {
    if member.role != OrgRole::Owner {
        return Ok(());
    }
    let owners = scoped
        .count(
            scoped
                .select::<organization_member::Entity>()
                .filter(organization_member::Column::Role.eq(OrgRole::Owner)),
        )
        .await?;
    if owners <= 1 {
        return Err(AppError::bad_input(
            "userId",
            "an organization needs at least one owner",
        ));
    }
    Ok(())
}

/// Makes the account with this email a member, with `role`.
pub async fn add_member(
    tenant: &Tenant,
    db: &Db,
    email: &str,
    role: OrgRole,
) -> AppResult<WithAccount<organization_member::Model>> {
    let email = Email::parse(email)?;
    let user = unscoped::accounts::find_user_by_email(db, email.as_str())
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let id = UserId(user.id);
    let member = tenant
        .write(async |scoped| insert_member(scoped, id, role).await)
        .await?;
    Ok(WithAccount {
        member,
        account: Some(user),
    })
}

async fn insert_member(
    scoped: &Scoped,
    user: UserId,
    role: OrgRole,
) -> AppResult<organization_member::Model> {
    check_grant(scoped, role)?;
    let now = Utc::now();
    let member = organization_member::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(scoped.context().org.0),
        user_id: Set(user.0),
        role: Set(role),
        created_at: Set(now),
        updated_at: Set(now),
    };
    if find_member(scoped, user).await?.is_some() {
        return Err(AppError::bad_input("email", "this person is already a member"));
    }
    scoped.insert(member).await
}

/// Changes a member's role; the API keys they created are capped at the new one in the same
/// transaction, and handed to `access_changed` before the member's account is read.
pub async fn update_member_role(
    tenant: &Tenant,
    db: &Db,
    user: UserId,
    role: OrgRole,
    access_changed: impl FnOnce(&[api_key::Model]),
) -> AppResult<WithAccount<organization_member::Model>> {
    let (member, capped) = tenant
        .write(async |scoped| change_role(scoped, user, role).await)
        .await?;
    access_changed(&capped);
    accounts::with_account(db, member).await
}

async fn change_role(
    scoped: &Scoped,
    user: UserId,
    role: OrgRole,
) -> AppResult<(organization_member::Model, Vec<api_key::Model>)> {
    check_grant(scoped, role)?;
    let member = get_member(scoped, user).await?;
    check_outranks(scoped, &member)?;
    if role != OrgRole::Owner {
        check_not_last_owner(scoped, &member).await?;
    }
    let mut member = member.into_active_model();
    member.role = Set(role);
    member.updated_at = Set(Utc::now());
    let member = scoped.update(member, "member").await?;
    let capped = api_keys::cap_keys_of(scoped, user, role).await?;
    Ok((member, capped))
}

/// Removes the member, their roles in this organization's projects, and the API keys they
/// created, in one transaction; then hands those keys to `access_changed`.
pub async fn remove_member(
    tenant: &Tenant,
    user: UserId,
    access_changed: impl FnOnce(&[api_key::Model]),
) -> AppResult<()> {
    let revoked = tenant
        .write(async |scoped| delete_member(scoped, user).await)
        .await?;
    access_changed(&revoked);
    Ok(())
}

async fn delete_member(scoped: &Scoped, user: UserId) -> AppResult<Vec<api_key::Model>> {
    let member = get_member(scoped, user).await?;
    check_outranks(scoped, &member)?;
    check_not_last_owner(scoped, &member).await?;
    scoped
        .delete_where(
            scoped
                .delete_many::<project_member::Entity>()
                .filter(project_member::Column::UserId.eq(user.0)),
        )
        .await?;
    scoped
        .delete::<organization_member::Entity>(member.id, "member")
        .await?;
    api_keys::revoke_keys_of(scoped, user).await
}
