//! Accounts and membership: registration (plain, by invite code, by partner link), login,
//! password changes, partner applications, freezing, admin re-binding, and the staff
//! accounts the CLI creates.
//!
//! Input is parsed once into [`Email`], [`Phone`], [`Password`] and [`DisplayName`]; taken
//! emails and phones are decided by the database's unique constraints, never by a
//! check-then-insert.

use chrono::{DateTime, Duration, Utc};
use entity::{binding, member};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::auth::{Hashing, Viewer, hash_password};
use super::hierarchy::{self, NewBinding};
use crate::error::{Error, Result};
use crate::events::{Event, Events, Kind};

/// Crockford's base32 alphabet: no I, L, O or U, so codes survive being read aloud or typed
/// from a screenshot. Input is normalised (I and L read as 1, O as 0).
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 8 symbols × 5 bits = 40 bits of randomness per invite code.
pub const INVITE_CODE_LEN: usize = 8;
/// Partner links are longer-lived and shared more widely: 10 symbols, 50 bits.
pub const PARTNER_LINK_LEN: usize = 10;

pub(crate) fn random_code(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CODE_ALPHABET[rng.random_range(0..32)] as char)
        .collect()
}

/// Upper-cases and maps look-alikes; `None` when it cannot be a code of `len` symbols.
pub fn normalise_code(raw: &str, len: usize) -> Option<String> {
    let code: String = raw
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            other => other,
        })
        .collect();
    (code.len() == len && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A lower-cased email address of plausible shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email> {
        let s = raw.trim().to_lowercase();
        let bad = || Error::validation("email", "not a valid email address");
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && s.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then_some(Email(s)).ok_or_else(bad)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form: an 11-digit Chinese mobile (`13812345678`) becomes
/// `+8613812345678`; other numbers must be E.164 already (`+` and 8–15 digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone> {
        let s: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let bad = || {
            Error::validation(
                "phone",
                "not a Chinese mobile number (11 digits) or an E.164 number",
            )
        };
        if s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit()) {
            let second = s.as_bytes()[1];
            return (b'3'..=b'9')
                .contains(&second)
                .then(|| Phone(format!("+86{s}")))
                .ok_or_else(bad);
        }
        let digits = s.strip_prefix('+').ok_or_else(bad)?;
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| Phone(s.clone())).ok_or_else(bad)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 10 to 128 characters (the upper bound caps hashing work).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str, field: &'static str) -> Result<Password> {
        match raw.chars().count() {
            n if n < 10 => Err(Error::validation(field, "must be at least 10 characters")),
            n if n > 128 => Err(Error::validation(field, "must be at most 128 characters")),
            _ => Ok(Password(raw.to_owned())),
        }
    }
}

/// A display name of 1 to 64 characters after trimming, with no character that hides or
/// reorders text ([`super::text::name`]).
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName> {
        super::text::name("displayName", raw, 64).map(DisplayName)
    }
}

/// What `register` receives, as typed by the client.
#[derive(Default)]
pub struct Registration {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password: String,
    pub display_name: String,
    pub invite_code: Option<String>,
    pub partner_link_code: Option<String>,
    /// The share code the member arrived through (`/s/{code}`): counted in its owner's
    /// funnel ([`super::funnel::record_signup`]); binds nobody.
    pub share_code: Option<String>,
}

/// Turns a unique violation on `members` into the error naming the taken field.
fn taken(err: sea_orm::DbErr) -> Error {
    if let Some(sea_orm::SqlErr::UniqueConstraintViolation(msg)) = err.sql_err() {
        let msg = msg.to_lowercase();
        if msg.contains("email") {
            return Error::rule("EMAIL_TAKEN", "this email is already registered");
        }
        if msg.contains("phone") {
            return Error::rule("PHONE_TAKEN", "this phone number is already registered");
        }
        if msg.contains("invite_code") || msg.contains("partner_link_code") {
            return Error::rule("TRY_AGAIN", "a code collision occurred; please retry");
        }
    }
    err.into()
}

fn invalid_invite() -> Error {
    Error::rule("INVALID_INVITE_CODE", "this invite code is not valid")
}

fn invalid_partner_link() -> Error {
    Error::rule("INVALID_PARTNER_LINK", "this partner link is not valid")
}

/// Registers a member. With an invite code: a push-hand bound permanently to the code's
/// owner. With a partner link: a buyer bound to the partner for `partner_binding_days`.
/// Otherwise a buyer with no upline.
pub async fn register(
    db: &DatabaseConnection,
    events: &Events,
    hashing: &Hashing,
    input: Registration,
    partner_binding_days: u32,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let email = input
        .email
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(Email::parse)
        .transpose()?;
    let phone = input
        .phone
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(Phone::parse)
        .transpose()?;
    if email.is_none() && phone.is_none() {
        return Err(Error::validation(
            "email",
            "an email or a phone number is required",
        ));
    }
    let password = Password::parse(&input.password, "password")?;
    let display_name = DisplayName::parse(&input.display_name)?;
    let invite = input
        .invite_code
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    let link = input
        .partner_link_code
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    if invite.is_some() && link.is_some() {
        return Err(Error::validation(
            "partnerLinkCode",
            "give an invite code or a partner link, not both",
        ));
    }
    let invite = invite
        .map(|c| normalise_code(c, INVITE_CODE_LEN).ok_or_else(invalid_invite))
        .transpose()?;
    let link = link
        .map(|c| normalise_code(c, PARTNER_LINK_LEN).ok_or_else(invalid_partner_link))
        .transpose()?;
    let share_code = input
        .share_code
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|c| {
            super::funnel::normalise(c)
                .ok_or_else(|| Error::validation("shareCode", "not a share code"))
        })
        .transpose()?;
    let password_hash = hashing.hash(password.0).await?;

    let txn = crate::db::begin_write(db).await?;
    let (tier, binding) = if let Some(code) = invite {
        let owner = member::Entity::find()
            .filter(member::Column::InviteCode.eq(code))
            .one(&txn)
            .await?
            .filter(|m| m.frozen_at.is_none() && m.tier != member::Tier::Buyer)
            .ok_or_else(invalid_invite)?;
        (
            member::Tier::PushHand,
            Some((owner.id, binding::Kind::InviteCode, None)),
        )
    } else if let Some(code) = link {
        let partner = member::Entity::find()
            .filter(member::Column::PartnerLinkCode.eq(code))
            .one(&txn)
            .await?
            .filter(|m| m.frozen_at.is_none() && m.tier == member::Tier::Partner)
            .ok_or_else(invalid_partner_link)?;
        let until = now + Duration::days(i64::from(partner_binding_days));
        (
            member::Tier::Buyer,
            Some((partner.id, binding::Kind::PartnerLink, Some(until))),
        )
    } else {
        (member::Tier::Buyer, None)
    };
    if binding.is_some() {
        hierarchy::lock(&txn).await?;
    }
    let model = member::Model {
        id: Uuid::now_v7(),
        email: email.map(|e| e.0),
        phone: phone.map(|p| p.0),
        password_hash,
        display_name: display_name.0,
        tier,
        staff_role: None,
        invite_code: (tier != member::Tier::Buyer).then(|| random_code(INVITE_CODE_LEN)),
        partner_link_code: None,
        partner_application: None,
        upline_id: None,
        frozen_at: None,
        frozen_reason: None,
        token_version: 0,
        created_at: now,
        merchant_id: None,
    };
    member::Entity::insert(member::ActiveModel::from(model.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(taken)?;
    let mut model = model;
    let mut changed = Vec::new();
    if let Some((upline, kind, expires_at)) = binding {
        hierarchy::attach(
            &txn,
            NewBinding {
                member: model.id,
                upline,
                kind,
                expires_at,
                created_by: None,
            },
            now,
            &mut changed,
        )
        .await?;
        model.upline_id = Some(upline);
    }
    // Welcome coupons (`ON_REGISTER` templates), in the registration's transaction.
    super::coupons::grant_on_register(&txn, model.id, now).await?;
    let sharer = match &share_code {
        Some(code) => super::funnel::record_signup(&txn, model.id, code, now).await?,
        None => None,
    };
    txn.commit().await?;
    let mut published = Event::changed(changed, model.id);
    if let Some(owner) = sharer {
        published.push(Event::new(owner, Kind::OwnChanged, owner));
    }
    events.publish(published).await;
    Ok(model)
}

/// The account a login names, as failure limits count it: the normalised email or phone
/// (what is not a valid one, trimmed, lower-cased and cut to 254 characters).
pub fn login_account(email: Option<&str>, phone: Option<&str>) -> String {
    let email = email.filter(|s| !s.trim().is_empty());
    let phone = phone.filter(|s| !s.trim().is_empty());
    let raw = |kind: &str, s: &str| {
        let s: String = s.trim().to_lowercase().chars().take(254).collect();
        format!("{kind}?{s}")
    };
    match (email, phone) {
        (Some(e), _) => {
            Email::parse(e).map_or_else(|_| raw("email", e), |e| format!("email:{}", e.0))
        }
        (None, Some(p)) => {
            Phone::parse(p).map_or_else(|_| raw("phone", p), |p| format!("phone:{}", p.0))
        }
        (None, None) => "none".to_owned(),
    }
}

/// The member with these credentials, or `INVALID_CREDENTIALS` (the same for an unknown
/// account and a wrong password, and equally slow).
pub async fn login(
    db: &impl ConnectionTrait,
    hashing: &Hashing,
    email: Option<&str>,
    phone: Option<&str>,
    password: &str,
) -> Result<member::Model> {
    let found = match (
        email.filter(|s| !s.trim().is_empty()),
        phone.filter(|s| !s.trim().is_empty()),
    ) {
        (Some(e), _) => match Email::parse(e) {
            Ok(e) => {
                member::Entity::find()
                    .filter(member::Column::Email.eq(e.0))
                    .one(db)
                    .await?
            }
            Err(_) => None,
        },
        (None, Some(p)) => match Phone::parse(p) {
            Ok(p) => {
                member::Entity::find()
                    .filter(member::Column::Phone.eq(p.0))
                    .one(db)
                    .await?
            }
            Err(_) => None,
        },
        (None, None) => {
            return Err(Error::validation(
                "email",
                "an email or a phone number is required",
            ));
        }
    };
    let ok = hashing
        .verify(
            password.to_owned(),
            found.as_ref().map(|m| m.password_hash.clone()),
        )
        .await?;
    match found {
        Some(m) if ok => Ok(m),
        _ => Err(Error::rule(
            "INVALID_CREDENTIALS",
            "wrong email, phone or password",
        )),
    }
}

/// Changes the password and revokes every token issued before (the token version goes up,
/// in the same transaction as the new hash). The old password is checked against the hash
/// stored now, and the write is conditional on that hash being still stored: of concurrent
/// changes one wins, and the others see the changed password (`INVALID_CREDENTIALS`).
pub async fn change_password(
    db: &DatabaseConnection,
    events: &Events,
    hashing: &Hashing,
    member: &member::Model,
    old: &str,
    new: &str,
) -> Result<member::Model> {
    let new = Password::parse(new, "newPassword")?;
    let wrong = || Error::rule("INVALID_CREDENTIALS", "the current password is wrong");
    // The row as stored, not the viewer's (which may be remembered from a moment ago).
    let stored = get(db, member.id).await?.password_hash;
    if !hashing.verify(old.to_owned(), Some(stored.clone())).await? {
        return Err(wrong());
    }
    let hash = hashing.hash(new.0).await?;
    let txn = crate::db::begin_write(db).await?;
    let changed = member::Entity::update_many()
        .col_expr(member::Column::PasswordHash, Expr::value(hash))
        .col_expr(
            member::Column::TokenVersion,
            Expr::col(member::Column::TokenVersion).add(1),
        )
        .filter(member::Column::Id.eq(member.id))
        .filter(member::Column::PasswordHash.eq(stored))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 0 {
        // Another change won since the check: the old password is no longer the password.
        return Err(wrong());
    }
    // As a freeze does: cached answers stop serving the revoked tokens before the commit.
    events.revoke(member.id).await?;
    let m = get(&txn, member.id).await?;
    txn.commit().await?;
    events
        .publish(vec![Event::new(member.id, Kind::TokensRevoked, member.id)])
        .await;
    Ok(m)
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<member::Model> {
    member::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("member"))
}

/// What a viewer may see of a member.
#[derive(Debug)]
pub enum MemberView {
    /// The member itself, or an admin: the private view.
    Private(member::Model),
    /// Its active upline and the members above it (within three levels): the public profile.
    Profile(member::Model),
}

/// Member `id` as `viewer` may see it ([`MemberView`]); anyone else (and the anonymous) gets
/// `NOT_FOUND`, exactly as for an id that does not exist.
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<MemberView> {
    let not_found = || Error::not_found("member");
    let Ok(me) = viewer.member() else {
        return Err(not_found());
    };
    let target = get(db, id).await.map_err(|_| not_found())?;
    if me.id == id || viewer.is_admin() {
        return Ok(MemberView::Private(target));
    }
    let is_my_upline = hierarchy::active_binding(db, me.id, now)
        .await?
        .is_some_and(|b| b.upline_id == id);
    if is_my_upline || super::team::in_team(db, me.id, id).await? {
        return Ok(MemberView::Profile(target));
    }
    Err(not_found())
}

/// A push-hand asks to become a partner; an admin decides.
pub async fn apply_for_partner(
    db: &impl ConnectionTrait,
    events: &Events,
    member: &member::Model,
) -> Result<member::Model> {
    if member.frozen_at.is_some() {
        return Err(Error::rule("MEMBER_FROZEN", "this account is frozen"));
    }
    match (member.tier, member.partner_application) {
        (member::Tier::Partner, _) => {
            return Err(Error::rule("ALREADY_PARTNER", "already a partner"));
        }
        (member::Tier::Buyer, _) => {
            return Err(Error::Forbidden(
                "only push-hands can apply to become partners".into(),
            ));
        }
        (_, Some(member::PartnerApplication::Pending)) => {
            return Err(Error::rule(
                "APPLICATION_PENDING",
                "an application is already pending",
            ));
        }
        _ => {}
    }
    member::Entity::update_many()
        .col_expr(
            member::Column::PartnerApplication,
            Expr::value(member::PartnerApplication::Pending),
        )
        .filter(member::Column::Id.eq(member.id))
        .exec(db)
        .await?;
    events.publish(Event::changed([member.id], member.id)).await;
    get(db, member.id).await
}

/// An admin's decision on a partner application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartnerDecision {
    /// Admits the applicant as a partner, with a fresh partner link.
    Approve,
    /// Turns the application down.
    Reject,
}

/// Decides a pending partner application. Audited. Conditional on its being pending, so of
/// two concurrent reviews one decides and the other sees `NO_PENDING_APPLICATION`; the
/// decision and its audit entry commit together.
pub async fn review_partner(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    member_id: Uuid,
    decision: PartnerDecision,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let approve = decision == PartnerDecision::Approve;
    let txn = crate::db::begin_write(db).await?;
    get(&txn, member_id).await?;
    let mut update = member::Entity::update_many()
        .filter(member::Column::Id.eq(member_id))
        .filter(member::Column::PartnerApplication.eq(member::PartnerApplication::Pending));
    update = if approve {
        update
            .col_expr(member::Column::Tier, Expr::value(member::Tier::Partner))
            .col_expr(
                member::Column::PartnerApplication,
                Expr::value(member::PartnerApplication::Approved),
            )
            .col_expr(
                member::Column::PartnerLinkCode,
                Expr::value(random_code(PARTNER_LINK_LEN)),
            )
    } else {
        update.col_expr(
            member::Column::PartnerApplication,
            Expr::value(member::PartnerApplication::Rejected),
        )
    };
    if update.exec(&txn).await.map_err(taken)?.rows_affected == 0 {
        return Err(Error::rule(
            "NO_PENDING_APPLICATION",
            "this member has no pending partner application",
        ));
    }
    let action = if approve {
        Action::PartnerApproved
    } else {
        Action::PartnerRejected
    };
    audit::record(
        &txn,
        actor,
        action,
        Some((TargetType::Member, member_id)),
        json!({}),
        now,
    )
    .await?;
    // An approval's roles show in the uplines' teams.
    let mut changed = if approve {
        hierarchy::uplines(&txn, member_id).await?
    } else {
        Vec::new()
    };
    changed.push(member_id);
    let m = get(&txn, member_id).await?;
    txn.commit().await?;
    events.publish(Event::changed(changed, member_id)).await;
    Ok(m)
}

/// Freezes (with a reason) or unfreezes a member. Freezing revokes its tokens; a frozen
/// member's codes are refused and it earns and withdraws nothing. Audited: unfreezing clears
/// the member's `frozen_at` and `frozen_reason`, and the freeze's entry in the audit log
/// keeps them (who froze, when, why; who lifted it, when).
pub async fn set_frozen(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    member_id: Uuid,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let reason = match reason.map(str::trim) {
        Some(r) if r.is_empty() || r.chars().count() > 500 => {
            return Err(Error::validation(
                "reason",
                "give a reason of 1 to 500 characters",
            ));
        }
        other => other,
    };
    let txn = crate::db::begin_write(db).await?;
    let m = get(&txn, member_id).await?;
    let mut update = member::Entity::update_many().filter(member::Column::Id.eq(m.id));
    let (action, arguments) = match reason {
        Some(reason) => {
            update = update
                .col_expr(member::Column::FrozenAt, Expr::value(now))
                .col_expr(member::Column::FrozenReason, Expr::value(reason))
                .col_expr(
                    member::Column::TokenVersion,
                    Expr::col(member::Column::TokenVersion).add(1),
                );
            (Action::MemberFrozen, json!({ "reason": reason }))
        }
        None => {
            update = update
                .col_expr(
                    member::Column::FrozenAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(
                    member::Column::FrozenReason,
                    Expr::value(Option::<String>::None),
                );
            // What the unfreeze lifts, so the entry reads on its own.
            (
                Action::MemberUnfrozen,
                json!({ "frozenAt": m.frozen_at, "frozenReason": m.frozen_reason }),
            )
        }
    };
    update.exec(&txn).await?;
    // A frozen member's likes of notes do not count (recounted from the members not frozen).
    let notes = super::notes::recount_likes_of(&txn, m.id).await?;
    audit::record(
        &txn,
        actor,
        action,
        Some((TargetType::Member, m.id)),
        arguments,
        now,
    )
    .await?;
    if reason.is_some() {
        events.revoke(m.id).await?;
    }
    let updated = get(&txn, member_id).await?;
    txn.commit().await?;
    let kind = match reason {
        Some(_) => Kind::TokensRevoked,
        None => Kind::Changed,
    };
    let mut batch = vec![Event::new(m.id, kind, m.id)];
    if !notes.is_empty() {
        batch.push(Event::note(None));
    }
    events.publish(batch).await;
    Ok(updated)
}

/// Admin: binds `member_id` under `upline_id` permanently, ending its current binding. The
/// upline must be a push-hand or partner; no cycles. Audited, with the upline it replaced.
pub async fn rebind(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    member_id: Uuid,
    upline_id: Uuid,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let txn = crate::db::begin_write(db).await?;
    hierarchy::lock(&txn).await?;
    let before = get(&txn, member_id).await?;
    let upline = get(&txn, upline_id)
        .await
        .map_err(|_| Error::not_found("upline"))?;
    if upline.tier == member::Tier::Buyer {
        return Err(Error::validation(
            "uplineId",
            "the upline must be a push-hand or partner",
        ));
    }
    if hierarchy::would_cycle(&txn, member_id, upline_id).await? {
        return Err(Error::rule(
            "BINDING_CYCLE",
            "a member cannot be bound to itself or into its own downline",
        ));
    }
    let mut changed = Vec::new();
    hierarchy::lapse_if_expired(&txn, member_id, now, &mut changed).await?;
    hierarchy::detach(
        &txn,
        member_id,
        binding::EndReason::Rebound,
        now,
        &mut changed,
    )
    .await?;
    let new = NewBinding {
        member: member_id,
        upline: upline_id,
        kind: binding::Kind::AdminRebind,
        expires_at: None,
        created_by: Some(actor.member),
    };
    hierarchy::attach(&txn, new, now, &mut changed).await?;
    audit::record(
        &txn,
        actor,
        Action::MemberRebound,
        Some((TargetType::Member, member_id)),
        json!({ "uplineId": upline_id, "previousUplineId": before.upline_id }),
        now,
    )
    .await?;
    let m = get(&txn, member_id).await?;
    txn.commit().await?;
    events.publish(Event::changed(changed, member_id)).await;
    Ok(m)
}

/// A signed-in member without an active upline follows another partner's exclusive link.
pub async fn accept_partner_link(
    db: &DatabaseConnection,
    events: &Events,
    member_id: Uuid,
    code: &str,
    partner_binding_days: u32,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let code = normalise_code(code, PARTNER_LINK_LEN).ok_or_else(invalid_partner_link)?;
    let txn = crate::db::begin_write(db).await?;
    hierarchy::lock(&txn).await?;
    let partner = member::Entity::find()
        .filter(member::Column::PartnerLinkCode.eq(code))
        .one(&txn)
        .await?
        .filter(|m| m.frozen_at.is_none() && m.tier == member::Tier::Partner)
        .ok_or_else(invalid_partner_link)?;
    let mut changed = Vec::new();
    hierarchy::lapse_if_expired(&txn, member_id, now, &mut changed).await?;
    if hierarchy::active_binding(&txn, member_id, now)
        .await?
        .is_some()
    {
        return Err(Error::rule("ALREADY_BOUND", "you already have an upline"));
    }
    let until = now + Duration::days(i64::from(partner_binding_days));
    let new = NewBinding {
        member: member_id,
        upline: partner.id,
        kind: binding::Kind::PartnerLink,
        expires_at: Some(until),
        created_by: None,
    };
    hierarchy::attach(&txn, new, now, &mut changed).await?;
    let m = get(&txn, member_id).await?;
    txn.commit().await?;
    events.publish(Event::changed(changed, member_id)).await;
    Ok(m)
}

/// The roles `pushhand create-user` can grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliRole {
    Admin,
    Curator,
    Merchant,
    Partner,
    PushHand,
}

/// Creates a staff account or a founding push-hand / partner (who have nobody to invite
/// them). A merchant account comes with its merchant (named after the account). An existing
/// email is `EMAIL_TAKEN`.
pub async fn create_user(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
    role: CliRole,
    display_name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<member::Model> {
    let email = Email::parse(email)?;
    let password = Password::parse(password, "password")?;
    let display_name = DisplayName::parse(
        display_name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("member")),
    )?;
    let (tier, staff_role) = match role {
        CliRole::Admin => (member::Tier::Buyer, Some(member::StaffRole::Admin)),
        CliRole::Curator => (member::Tier::Buyer, Some(member::StaffRole::Curator)),
        CliRole::Merchant => (member::Tier::Buyer, Some(member::StaffRole::Merchant)),
        CliRole::Partner => (member::Tier::Partner, None),
        CliRole::PushHand => (member::Tier::PushHand, None),
    };
    let password_hash = hash_password(password.0).await?;
    let txn = crate::db::begin_write(db).await?;
    let merchant_id = match role {
        CliRole::Merchant => Some(
            super::catalog::create_merchant(&txn, &display_name.0)
                .await?
                .id,
        ),
        _ => None,
    };
    let model = member::Model {
        id: Uuid::now_v7(),
        email: Some(email.0),
        phone: None,
        password_hash,
        display_name: display_name.0,
        tier,
        staff_role,
        invite_code: (tier != member::Tier::Buyer).then(|| random_code(INVITE_CODE_LEN)),
        partner_link_code: (tier == member::Tier::Partner).then(|| random_code(PARTNER_LINK_LEN)),
        partner_application: (tier == member::Tier::Partner)
            .then_some(member::PartnerApplication::Approved),
        upline_id: None,
        frozen_at: None,
        frozen_reason: None,
        token_version: 0,
        created_at: now,
        merchant_id,
    };
    member::Entity::insert(member::ActiveModel::from(model.clone()))
        .exec_without_returning(&txn)
        .await
        .map_err(taken)?;
    txn.commit().await?;
    Ok(model)
}

/// Binding history of a member, newest first.
pub async fn bindings_of(
    db: &impl ConnectionTrait,
    member_id: Uuid,
) -> Result<Vec<binding::Model>> {
    use sea_orm::QueryOrder;
    Ok(binding::Entity::find()
        .filter(binding::Column::MemberId.eq(member_id))
        .order_by_desc(binding::Column::StartsAt)
        .order_by_desc(binding::Column::Id)
        .all(db)
        .await?)
}

/// Which members a staff list holds, by role: a programme tier (push-hands include
/// partners, as `roles` lists them) or a staff role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleFilter {
    Buyer,
    PushHand,
    Partner,
    Staff(member::StaffRole),
}

/// What the admins' member lists (`members`, `partnerApplications`) are narrowed to. All
/// given conditions hold.
#[derive(Clone, Debug, Default)]
pub struct MemberFilter {
    /// Case-insensitive substring of the email, phone, display name or invite code (at
    /// most [`super::catalog::MAX_SEARCH_LEN`] characters; blank: no condition).
    pub search: Option<String>,
    pub role: Option<RoleFilter>,
    pub frozen: Option<bool>,
    pub application: Option<member::PartnerApplication>,
}

impl MemberFilter {
    fn query(&self) -> Result<sea_orm::Select<member::Entity>> {
        use sea_orm::Condition;
        use sea_orm::sea_query::{Func, LikeExpr};
        let mut q = member::Entity::find();
        if let Some(term) = self.search.as_deref().map(str::trim) {
            if term.chars().count() > super::catalog::MAX_SEARCH_LEN {
                return Err(Error::validation(
                    "search",
                    format!("at most {} characters", super::catalog::MAX_SEARCH_LEN),
                ));
            }
            if !term.is_empty() {
                let pattern = format!("%{}%", super::catalog::escape_like(&term.to_lowercase()));
                let mut any = Condition::any();
                for c in [
                    member::Column::Email,
                    member::Column::Phone,
                    member::Column::DisplayName,
                    member::Column::InviteCode,
                ] {
                    any = any.add(
                        Expr::expr(Func::lower(Expr::col((member::Entity, c))))
                            .like(LikeExpr::new(pattern.clone()).escape('\\')),
                    );
                }
                q = q.filter(any);
            }
        }
        q = match self.role {
            None => q,
            Some(RoleFilter::Buyer) => q.filter(member::Column::Tier.eq(member::Tier::Buyer)),
            Some(RoleFilter::PushHand) => q.filter(
                member::Column::Tier.is_in([member::Tier::PushHand, member::Tier::Partner]),
            ),
            Some(RoleFilter::Partner) => q.filter(member::Column::Tier.eq(member::Tier::Partner)),
            Some(RoleFilter::Staff(r)) => q.filter(member::Column::StaffRole.eq(r)),
        };
        q = match self.frozen {
            None => q,
            Some(true) => q.filter(member::Column::FrozenAt.is_not_null()),
            Some(false) => q.filter(member::Column::FrozenAt.is_null()),
        };
        if let Some(a) = self.application {
            q = q.filter(member::Column::PartnerApplication.eq(a));
        }
        Ok(q)
    }
}

/// Position after the last member of a page: newest registrations first.
pub type MemberCursor = super::page::NewestCursor;

/// The members `filter` admits, newest registrations first (admins' work lists).
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &MemberFilter,
    after: Option<&MemberCursor>,
    first: u64,
) -> Result<super::page::Page<member::Model>> {
    super::page::newest_first(
        db,
        filter.query()?,
        member::Column::CreatedAt,
        member::Column::Id,
        after,
        first,
    )
    .await
}

/// How many members `filter` admits, when `wanted` (`totalCount`).
pub async fn total(
    db: &impl ConnectionTrait,
    filter: &MemberFilter,
    wanted: bool,
) -> Result<Option<u64>> {
    super::page::total(db, filter.query()?, wanted).await
}

/// Members by id (a loader's batch: one statement).
pub async fn by_ids(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, member::Model>> {
    let rows = member::Entity::find()
        .filter(super::one_of(db, member::Column::Id, ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}
