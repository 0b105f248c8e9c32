//! Payouts of withdrawals (提现打款) and the accounts they pay to.
//!
//! **Accounts.** A member keeps one payout account per channel (`setPayoutAccount`): a
//! WeChat openid, an Alipay account, a bank card (`MANUAL`). They are stored as given and
//! shown masked — to their owner and to admins alike ([`mask_account`], [`mask_name`]); no
//! other member can reach them. The one exception is what a `MANUAL` payout needs: an admin
//! paying a `PROCESSING` bank-card withdrawal reads its full card number, holder and bank
//! with `revealPayoutAccount`, audited in its transaction.
//!
//! **Lifecycle.** A withdrawal records its channel and a snapshot of the account when it is
//! requested ([`destination`]). Approving moves it to `PROCESSING` and starts its transfer
//! ([`start`]); it ends once, in [`apply`]: a conditional update from `PROCESSING` to `PAID`
//! (booked: reserved → withdrawn, fee apart) or `FAILED` (one entry: reserved → available),
//! in the transaction of its ledger entries, so duplicate or concurrent confirmations —
//! notifications, queries, an admin — book once (and a unique index on the ledger keeps one
//! outcome per withdrawal whatever the code does). Every change publishes
//! `WithdrawalChanged` to its member.

use chrono::{DateTime, Utc};
use entity::{Money, member, payout_account, withdrawal};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind};
use crate::payments::payouts::{
    PayoutChannel, PayoutState, Payouts, Transfer, WECHAT_NAME_REQUIRED_FROM,
};
use crate::payments::{Notice, PaymentError};
use crate::service::payments::NotifyError;

/// A member's payout account as given to `setPayoutAccount`.
#[derive(Clone, Debug)]
pub struct AccountInput {
    pub channel: PayoutChannel,
    pub account: String,
    pub holder_name: Option<String>,
    pub bank_name: Option<String>,
}

fn checked_text(field: &'static str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            format!("must be 1 to {max} characters, no control characters"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// Checks an account: every bad field at once.
fn check(input: &AccountInput) -> Result<(String, Option<String>, Option<String>)> {
    let mut errors = FieldErrors::default();
    let account = input.account.trim();
    let account_ok = match input.channel {
        // An openid: WeChat's are 28 characters of [A-Za-z0-9_-]; allow 6 to 64.
        PayoutChannel::Wechat => {
            (6..=64).contains(&account.len())
                && account
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        // A logon id (phone or email) or a 2088… user id.
        PayoutChannel::Alipay => {
            (5..=100).contains(&account.len())
                && !account.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20)
        }
        // A bank card number: 12 to 19 digits (spaces dropped).
        PayoutChannel::Manual => {
            let digits: String = account.split_whitespace().collect();
            (12..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
    };
    if !account_ok {
        errors.check::<()>(Err(Error::validation(
            "input.account",
            match input.channel {
                PayoutChannel::Wechat => "must be your openid: 6 to 64 letters, digits, _ or -",
                PayoutChannel::Alipay => {
                    "must be an Alipay logon id (phone or email) or user id (2088…)"
                }
                PayoutChannel::Manual => "must be a bank card number: 12 to 19 digits",
            },
        )));
    }
    // `None`: refused (noted); `Some(None)`: not given.
    let holder = errors.check(checked_text(
        "input.holderName",
        input.holder_name.as_deref(),
        64,
    ));
    let bank = errors.check(checked_text(
        "input.bankName",
        input.bank_name.as_deref(),
        64,
    ));
    // Alipay checks a logon id's name; a bank transfer needs the holder and the bank.
    if input.channel != PayoutChannel::Wechat && holder == Some(None) {
        errors.check::<()>(Err(Error::validation(
            "input.holderName",
            "is required for Alipay and bank card accounts",
        )));
    }
    if input.channel == PayoutChannel::Manual && bank == Some(None) {
        errors.check::<()>(Err(Error::validation(
            "input.bankName",
            "is required for a bank card",
        )));
    }
    let (holder, bank) = (holder.flatten(), bank.flatten());
    errors.finish()?;
    let account = match input.channel {
        PayoutChannel::Manual => account.split_whitespace().collect(),
        _ => account.to_owned(),
    };
    let bank = if input.channel == PayoutChannel::Manual {
        bank
    } else {
        None
    };
    Ok((account, holder, bank))
}

/// Sets `m`'s payout account of its channel (replacing the one there was). Withdrawals
/// already requested keep paying to the account they recorded.
pub async fn set_account(
    db: &DatabaseConnection,
    events: &Events,
    m: &member::Model,
    input: AccountInput,
    now: DateTime<Utc>,
) -> Result<payout_account::Model> {
    let (account, holder, bank) = check(&input)?;
    payout_account::Entity::insert(payout_account::ActiveModel {
        id: Set(Uuid::now_v7()),
        member_id: Set(m.id),
        channel: Set(input.channel.code().to_owned()),
        account: Set(account),
        holder_name: Set(holder),
        bank_name: Set(bank),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            payout_account::Column::MemberId,
            payout_account::Column::Channel,
        ])
        .update_columns([
            payout_account::Column::Account,
            payout_account::Column::HolderName,
            payout_account::Column::BankName,
            payout_account::Column::UpdatedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    // `me.payoutAccounts` changed: the member's cached answers go.
    events.publish(Event::changed([m.id], m.id)).await;
    account_of(db, m.id, input.channel)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("payout account vanished")))
}

/// `member`'s account of `channel`.
pub async fn account_of(
    db: &DatabaseConnection,
    member: Uuid,
    channel: PayoutChannel,
) -> Result<Option<payout_account::Model>> {
    Ok(payout_account::Entity::find()
        .filter(payout_account::Column::MemberId.eq(member))
        .filter(payout_account::Column::Channel.eq(channel.code()))
        .one(db)
        .await?)
}

/// `member`'s accounts, in channel order.
pub async fn accounts(db: &DatabaseConnection, member: Uuid) -> Result<Vec<payout_account::Model>> {
    let mut all = payout_account::Entity::find()
        .filter(payout_account::Column::MemberId.eq(member))
        .all(db)
        .await?;
    all.sort_by_key(|a| {
        PayoutChannel::ALL
            .iter()
            .position(|c| c.code() == a.channel)
    });
    Ok(all)
}

/// An account number as shown: a card's last 4 digits; an email's first letter and domain;
/// otherwise the first 3 and last 4 characters (fewer for short ones).
pub fn mask_account(channel: &str, account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    let n = chars.len();
    let tail = |k: usize| chars[n.saturating_sub(k)..].iter().collect::<String>();
    if channel == PayoutChannel::Manual.code() {
        return format!("**** {}", tail(4));
    }
    if let Some((user, domain)) = account.split_once('@') {
        let first: String = user.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    if n >= 10 {
        let head: String = chars[..3].iter().collect();
        return format!("{head}****{}", tail(4));
    }
    let head: String = chars.iter().take(1).collect();
    format!("{head}***{}", tail(2.min(n.saturating_sub(1))))
}

/// A name as shown: its last character only (`**明`).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.split_last() {
        Some((last, rest)) => format!("{}{last}", "*".repeat(rest.len().max(1))),
        None => String::new(),
    }
}

/// Where a withdrawal will be paid.
#[derive(Clone, Debug)]
pub struct Destination {
    pub channel: PayoutChannel,
    pub account: Option<String>,
    pub holder: Option<String>,
    pub bank: Option<String>,
}

/// The destination of a new withdrawal of `member` paying out `payout` (its amount less its
/// fee) through `channel` (none: `MANUAL`, to the bank card when there is one).
pub async fn destination(
    db: &DatabaseConnection,
    payouts: &Payouts,
    member: Uuid,
    channel: Option<PayoutChannel>,
    payout: Money,
) -> Result<Destination> {
    let Some(channel) = channel else {
        let card = account_of(db, member, PayoutChannel::Manual).await?;
        return Ok(Destination {
            channel: PayoutChannel::Manual,
            account: card.as_ref().map(|c| c.account.clone()),
            holder: card.as_ref().and_then(|c| c.holder_name.clone()),
            bank: card.and_then(|c| c.bank_name),
        });
    };
    if payouts.get(channel).is_none() {
        return Err(Error::rule(
            "PAYOUT_CHANNEL_UNAVAILABLE",
            format!("{} payouts are not enabled", channel.code()),
        ));
    }
    let account = account_of(db, member, channel).await?.ok_or_else(|| {
        Error::rule(
            "PAYOUT_ACCOUNT_MISSING",
            format!(
                "set your {} payout account first (setPayoutAccount)",
                channel.code()
            ),
        )
    })?;
    // WeChat checks the payee's real name on transfers from 2000.00 (sent encrypted).
    if channel == PayoutChannel::Wechat
        && payout.to_decimal() >= WECHAT_NAME_REQUIRED_FROM
        && account.holder_name.is_none()
    {
        return Err(Error::rule(
            "PAYOUT_NAME_REQUIRED",
            "WeChat transfers of 2000.00 or more need your real name: add holderName to \
             your WECHAT payout account (setPayoutAccount)",
        ));
    }
    Ok(Destination {
        channel,
        account: Some(account.account),
        holder: account.holder_name,
        bank: account.bank_name,
    })
}

/// A withdrawal's payout channel (rows from before payouts: `MANUAL`).
pub fn channel_of(w: &withdrawal::Model) -> PayoutChannel {
    w.payout_channel
        .as_deref()
        .and_then(PayoutChannel::parse)
        .unwrap_or(PayoutChannel::Manual)
}

fn transfer_of(w: &withdrawal::Model, now: DateTime<Utc>) -> Transfer<'_> {
    Transfer {
        withdrawal_id: w.id,
        amount: Money::from_fen(w.amount.fen() - w.fee.fen()).to_decimal(),
        account: w.payout_account.as_deref().unwrap_or(""),
        holder: w.payout_holder.as_deref(),
        now,
    }
}

async fn find(db: &impl sea_orm::ConnectionTrait, id: Uuid) -> Result<withdrawal::Model> {
    withdrawal::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("withdrawal"))
}

fn cut(text: &str, max: usize) -> String {
    crate::payments::cut(text, max).to_owned()
}

/// An audit entry for [`apply`] to write in its transaction.
pub struct Audit<'a> {
    pub actor: &'a Actor,
    pub action: Action,
    pub arguments: serde_json::Value,
}

fn label(state: &PayoutState) -> &'static str {
    match state {
        PayoutState::Paid { .. } => "PAID",
        PayoutState::Failed { .. } => "FAILED",
        PayoutState::Processing { .. } => "PROCESSING",
        PayoutState::NotFound => "NOT_FOUND",
    }
}

/// Applies what a verified answer, notification or admin says of a `PROCESSING` payout, in
/// one transaction with its ledger entries and `audit`. Returns the withdrawal and whether it
/// changed. A payout no longer `PROCESSING` is left alone (a duplicate); with
/// `require_change` that is `PAYOUT_NOT_PROCESSING` and nothing is written.
pub async fn apply(
    db: &DatabaseConnection,
    events: &Events,
    id: Uuid,
    state: &PayoutState,
    audit: Option<Audit<'_>>,
    require_change: bool,
    now: DateTime<Utc>,
) -> Result<(withdrawal::Model, bool)> {
    let txn = crate::db::begin_write(db).await?;
    let w = find(&txn, id).await?;
    let processing = withdrawal::Column::Status.eq(withdrawal::Status::Processing);
    let update = || withdrawal::Entity::update_many().filter(withdrawal::Column::Id.eq(id));
    let changed = match state {
        PayoutState::Paid { reference } => {
            let done = update()
                .col_expr(
                    withdrawal::Column::Status,
                    Expr::value(withdrawal::Status::Paid),
                )
                .col_expr(
                    withdrawal::Column::PayoutReference,
                    Expr::value(cut(reference, 128)),
                )
                .col_expr(withdrawal::Column::PayoutError, Expr::value(None::<String>))
                .col_expr(
                    withdrawal::Column::PayoutClientParams,
                    Expr::value(None::<String>),
                )
                .col_expr(withdrawal::Column::FinishedAt, Expr::value(now))
                .filter(processing)
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
            if done {
                super::withdrawals::book_paid(&txn, &w, now).await?;
            }
            done
        }
        PayoutState::Failed { reference, reason } => {
            let mut q = update()
                .col_expr(
                    withdrawal::Column::Status,
                    Expr::value(withdrawal::Status::Failed),
                )
                .col_expr(
                    withdrawal::Column::PayoutError,
                    Expr::value(cut(reason, 512)),
                )
                .col_expr(
                    withdrawal::Column::PayoutClientParams,
                    Expr::value(None::<String>),
                )
                .col_expr(withdrawal::Column::FinishedAt, Expr::value(now));
            if let Some(r) = reference {
                q = q.col_expr(
                    withdrawal::Column::PayoutReference,
                    Expr::value(cut(r, 128)),
                );
            }
            let done = q.filter(processing).exec(&txn).await?.rows_affected == 1;
            if done {
                super::withdrawals::book_failed(&txn, &w, now).await?;
            }
            done
        }
        PayoutState::Processing {
            reference,
            client_params,
        } => {
            let mut q =
                update().col_expr(withdrawal::Column::PayoutError, Expr::value(None::<String>));
            if let Some(r) = reference {
                q = q.col_expr(
                    withdrawal::Column::PayoutReference,
                    Expr::value(cut(r, 128)),
                );
            }
            if let Some(p) = client_params {
                q = q.col_expr(
                    withdrawal::Column::PayoutClientParams,
                    Expr::value(cut(&p.to_string(), 1024)),
                );
            }
            q.filter(processing).exec(&txn).await?.rows_affected == 1
                && (reference.is_some() || client_params.is_some() || w.payout_error.is_some())
        }
        PayoutState::NotFound => false,
    };
    let terminal = matches!(state, PayoutState::Paid { .. } | PayoutState::Failed { .. });
    if !changed && terminal && w.status != withdrawal::Status::Processing {
        let agrees = matches!(
            (state, w.status),
            (PayoutState::Paid { .. }, withdrawal::Status::Paid)
                | (PayoutState::Failed { .. }, withdrawal::Status::Failed)
        );
        if !agrees {
            tracing::error!(
                code = "PAYOUT_CONFLICT",
                withdrawal = %id,
                stored = ?w.status,
                said = label(state),
                "a payout's outcome contradicts the one booked: review it with the provider"
            );
        }
    }
    if require_change && !changed {
        return Err(Error::rule(
            "PAYOUT_NOT_PROCESSING",
            "this withdrawal's payout is not in progress",
        ));
    }
    if let Some(a) = audit {
        audit::record(
            &txn,
            a.actor,
            a.action,
            Some((TargetType::Withdrawal, id)),
            a.arguments,
            now,
        )
        .await?;
    }
    let w = find(&txn, id).await?;
    txn.commit().await?;
    if changed {
        events
            .publish(vec![Event::new(w.member_id, Kind::WithdrawalChanged, w.id)])
            .await;
    }
    Ok((w, changed))
}

/// Notes a provider error on a `PROCESSING` payout (it stays so).
async fn note_error(
    db: &DatabaseConnection,
    id: Uuid,
    error: &PaymentError,
) -> Result<withdrawal::Model> {
    let text = match error {
        PaymentError::Refused(r) => format!("refused answer: {r:?}"),
        PaymentError::Upstream(m) => m.clone(),
        PaymentError::Invalid(f) => format!("not payable by this channel: {f}"),
        PaymentError::Internal(e) => format!("{e:#}"),
    };
    tracing::warn!(withdrawal = %id, error = %text, "payout not settled; it stays PROCESSING");
    withdrawal::Entity::update_many()
        .col_expr(
            withdrawal::Column::PayoutError,
            Expr::value(cut(&text, 512)),
        )
        .filter(withdrawal::Column::Id.eq(id))
        .filter(withdrawal::Column::Status.eq(withdrawal::Status::Processing))
        .exec(db)
        .await?;
    find(db, id).await
}

/// Starts the payout of a withdrawal just approved (`PROCESSING`).
pub async fn start(
    db: &DatabaseConnection,
    events: &Events,
    payouts: &Payouts,
    w: withdrawal::Model,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let Some(payout) = payouts.get(channel_of(&w)) else {
        return Ok(w);
    };
    match payout.transfer(&transfer_of(&w, now)).await {
        Ok(state) => Ok(apply(db, events, w.id, &state, None, false, now).await?.0),
        Err(e) => note_error(db, w.id, &e).await,
    }
}

/// ADMIN: asks the provider where a `PROCESSING` payout stands and applies it; a transfer
/// the provider never received is sent again under its same number. Audited
/// (`PAYOUT_SYNCED`, with what the provider said) in the transaction that applies it.
pub async fn sync(
    db: &DatabaseConnection,
    events: &Events,
    payouts: &Payouts,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let w = find(db, id).await?;
    if w.status != withdrawal::Status::Processing {
        return Err(Error::rule(
            "PAYOUT_NOT_PROCESSING",
            "this withdrawal's payout is not in progress",
        ));
    }
    let channel = channel_of(&w);
    if channel == PayoutChannel::Manual {
        return Err(Error::rule(
            "PAYOUT_MANUAL",
            "a MANUAL payout is ended by markPayoutPaid or markPayoutFailed",
        ));
    }
    let payout = payouts.get(channel).ok_or_else(|| {
        Error::rule(
            "PAYOUT_CHANNEL_UNAVAILABLE",
            format!("{} payouts are not enabled", channel.code()),
        )
    })?;
    let transfer = transfer_of(&w, now);
    let mut said = payout.query(&transfer).await;
    let mut resent = false;
    if matches!(said, Ok(PayoutState::NotFound)) {
        resent = true;
        said = payout.transfer(&transfer).await;
    }
    let (state, error) = match said {
        Ok(state) => (state, None),
        Err(e) => {
            note_error(db, id, &e).await?;
            (
                PayoutState::Processing {
                    reference: None,
                    client_params: None,
                },
                Some(format!("{e:?}")),
            )
        }
    };
    let audit = Audit {
        actor,
        action: Action::PayoutSynced,
        arguments: serde_json::json!({
            "channel": channel.code(),
            "state": label(&state),
            "resent": resent,
            "error": error,
        }),
    };
    Ok(apply(db, events, id, &state, Some(audit), false, now)
        .await?
        .0)
}

/// ADMIN: records that a `MANUAL` payout was paid, with the bank's reference; booked once.
pub async fn mark_paid(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let reference = checked_text("reference", Some(reference), 128)?
        .ok_or_else(|| Error::validation("reference", "must be 1 to 128 characters"))?;
    manual(db, events, actor, id, PayoutState::Paid { reference }, now).await
}

/// ADMIN: records that a `MANUAL` payout failed; the funds return once.
pub async fn mark_failed(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let reason = checked_text("reason", Some(reason), 500)?
        .ok_or_else(|| Error::validation("reason", "must be 1 to 500 characters"))?;
    let state = PayoutState::Failed {
        reference: None,
        reason,
    };
    manual(db, events, actor, id, state, now).await
}

async fn manual(
    db: &DatabaseConnection,
    events: &Events,
    actor: &Actor,
    id: Uuid,
    state: PayoutState,
    now: DateTime<Utc>,
) -> Result<withdrawal::Model> {
    let w = find(db, id).await?;
    if channel_of(&w) != PayoutChannel::Manual {
        return Err(Error::rule(
            "PAYOUT_NOT_MANUAL",
            "only MANUAL payouts are recorded by hand; syncPayout asks the provider",
        ));
    }
    let (action, arguments) = match &state {
        PayoutState::Paid { reference } => (
            Action::PayoutMarkedPaid,
            serde_json::json!({ "reference": reference, "memberId": w.member_id.to_string(), "amount": w.amount.to_decimal().to_string() }),
        ),
        PayoutState::Failed { reason, .. } => (
            Action::PayoutMarkedFailed,
            serde_json::json!({ "reason": reason, "memberId": w.member_id.to_string(), "amount": w.amount.to_decimal().to_string() }),
        ),
        _ => return Err(Error::internal(anyhow::anyhow!("not a manual outcome"))),
    };
    let audit = Audit {
        actor,
        action,
        arguments,
    };
    Ok(apply(db, events, id, &state, Some(audit), true, now)
        .await?
        .0)
}

/// A verified payout notification, applied (duplicates change nothing).
pub async fn notified(
    db: &DatabaseConnection,
    events: &Events,
    payouts: &Payouts,
    channel: PayoutChannel,
    notice: Notice<'_>,
    now: DateTime<Utc>,
) -> std::result::Result<(), NotifyError> {
    let Some(payout) = payouts.get(channel) else {
        return Err(NotifyError::Refused(crate::payments::Refusal::Unrelated));
    };
    let said = match payout.verify_notice(notice, now).await {
        Ok(n) => n,
        Err(PaymentError::Refused(r)) => {
            tracing::warn!(channel = channel.code(), refusal = ?r, "payout notification refused");
            return Err(NotifyError::Refused(r));
        }
        Err(PaymentError::Internal(e)) => return Err(NotifyError::Failed(Error::internal(e))),
        Err(other) => {
            return Err(NotifyError::Failed(Error::internal(anyhow::anyhow!(
                "{other:?}"
            ))));
        }
    };
    let w = match find(db, said.withdrawal_id).await {
        Ok(w) if channel_of(&w) == channel => w,
        Ok(_) | Err(Error::NotFound(_)) => {
            tracing::warn!(channel = channel.code(), withdrawal = %said.withdrawal_id, "a verified payout notification of no withdrawal of this channel");
            return Err(NotifyError::Refused(crate::payments::Refusal::Unrelated));
        }
        Err(e) => return Err(NotifyError::Failed(e)),
    };
    let expected = Money::from_fen(w.amount.fen() - w.fee.fen()).to_decimal();
    if said.amount.is_some_and(|a| a != expected) {
        tracing::error!(
            code = "PAYOUT_MISMATCH",
            withdrawal = %w.id,
            expected = %expected,
            said = ?said.amount,
            "a verified payout notification of another amount: left for review"
        );
        return Ok(());
    }
    apply(db, events, w.id, &said.state, None, false, now)
        .await
        .map_err(NotifyError::Failed)?;
    Ok(())
}

/// What a `MANUAL` payout pays to, in full.
#[derive(Clone, Debug)]
pub struct Revealed {
    pub account: Option<String>,
    pub holder: Option<String>,
    pub bank: Option<String>,
}

/// ADMIN: the full bank card of a `PROCESSING` `MANUAL` payout (what the admin pays to),
/// audited (`PAYOUT_ACCOUNT_REVEALED`) in its own transaction.
pub async fn reveal(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Revealed> {
    let txn = crate::db::begin_write(db).await?;
    let w = find(&txn, id).await?;
    if channel_of(&w) != PayoutChannel::Manual {
        return Err(Error::rule(
            "PAYOUT_NOT_MANUAL",
            "only a MANUAL payout's account is shown in full",
        ));
    }
    if w.status != withdrawal::Status::Processing {
        return Err(Error::rule(
            "PAYOUT_NOT_PROCESSING",
            "the account is shown only while the payout is in progress",
        ));
    }
    audit::record(
        &txn,
        actor,
        Action::PayoutAccountRevealed,
        Some((TargetType::Withdrawal, id)),
        serde_json::json!({ "memberId": w.member_id.to_string() }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Revealed {
        account: w.payout_account,
        holder: w.payout_holder,
        bank: w.payout_bank,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_little() {
        assert_eq!(mask_account("MANUAL", "6222021234567890123"), "**** 0123");
        assert_eq!(
            mask_account("ALIPAY", "zhang.san@example.com"),
            "z***@example.com"
        );
        assert_eq!(mask_account("ALIPAY", "13800001234"), "138****1234");
        assert_eq!(
            mask_account("WECHAT", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            "oUp****eS6o"
        );
        assert_eq!(mask_account("ALIPAY", "abcdef"), "a***ef");
        assert_eq!(mask_name("张三丰"), "**丰");
        assert_eq!(mask_name("李"), "*李");
    }
}
