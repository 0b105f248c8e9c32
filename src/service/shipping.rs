//! Shipping fees. The platform ships for its merchants (S2B2C), one parcel per merchant per
//! order, and charges for each parcel by the merchant's shipping rule:
//!
//! - a flat **base fee**;
//! - waived when the subtotal of that merchant's lines reaches the **free threshold** (满 X 包邮:
//!   a subtotal equal to the threshold ships free; no threshold, never waived);
//! - plus the **surcharge** of the destination province when the rule names it (remote
//!   provinces such as 新疆 `650000` or 西藏 `540000`). A surcharge is charged even when the
//!   base fee is waived: "包邮（偏远地区除外）", free shipping except to remote areas, as
//!   Chinese shops usually mean it.
//!
//! A merchant without a rule ships free ([`Basis::NoRule`]): the platform's default, so that no
//! buyer pays a fee nobody configured. Admins set rules with `setShippingRule` (audited).
//!
//! [`quote`] prices the parcels of an order for the checkout; [`quote_parcel`] is the same
//! rule without the database. Shipping is never part of a rebate base: earnings are computed
//! from the lines' paid amounts only.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use entity::{Money, merchant, shipping_rule, shipping_surcharge};
use rust_decimal::Decimal;
use sea_orm::sea_query::{LockType, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::{self, Action, Actor, TargetType};
use super::page::{NewestCursor, Page, newest_first};
use super::regions::{self, Level};
use crate::error::{Error, FieldErrors, Result};

/// Highest base fee or surcharge an admin may set (a typo guard): 1,000.00.
pub const MAX_FEE: Money = Money::from_fen(100_000);
/// Highest free-shipping threshold: 1,000,000.00.
pub const MAX_THRESHOLD: Money = Money::from_fen(100_000_000);

/// A merchant's shipping rule with its surcharges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub row: shipping_rule::Model,
    /// (province code, surcharge), by code.
    pub surcharges: Vec<(String, Money)>,
}

impl Rule {
    /// The surcharge for parcels to `province` (zero when the rule names none).
    pub fn surcharge_for(&self, province: &str) -> Money {
        self.surcharges
            .iter()
            .find(|(code, _)| code == province)
            .map_or(Money::ZERO, |(_, amount)| *amount)
    }

    /// The rule as the audit log keeps it.
    fn to_json(&self) -> Value {
        json!({
            "baseFee": self.row.base_fee.to_string(),
            "freeThreshold": self.row.free_threshold.map(|t| t.to_string()),
            "surcharges": self.surcharges.iter()
                .map(|(code, amount)| (code.clone(), Value::from(amount.to_string())))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// What an admin sends (`setShippingRule`), as decimals.
#[derive(Clone, Debug, Default)]
pub struct RuleInput {
    pub base_fee: Decimal,
    pub free_threshold: Option<Decimal>,
    pub surcharges: Vec<SurchargeInput>,
}

/// One surcharge amount for a group of provinces.
#[derive(Clone, Debug, Default)]
pub struct SurchargeInput {
    /// Six-digit province codes (`650000`).
    pub province_codes: Vec<String>,
    pub amount: Decimal,
}

/// An exact amount of at most two decimals within `range`; otherwise a message for its
/// field.
fn money_in(
    errors: &mut FieldErrors,
    field: String,
    d: Decimal,
    min: Money,
    max: Money,
) -> Option<Money> {
    let money = Money::from_decimal(d).filter(|m| (min..=max).contains(m));
    if money.is_none() {
        errors.push(
            field,
            format!("must be {min} to {max}, with at most 2 decimal places"),
        );
    }
    money
}

/// A rule input whose every field passed: base fee, threshold, surcharges by province code.
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    base_fee: Money,
    free_threshold: Option<Money>,
    surcharges: Vec<(String, Money)>,
}

/// Checks every field of `input` (paths `input.baseFee`, `input.freeThreshold`,
/// `input.surcharges[i].provinceCodes[j]`, `input.surcharges[i].amount`), all bad ones at
/// once.
fn check(input: &RuleInput) -> Result<Checked> {
    let mut errors = FieldErrors::default();
    let base = money_in(
        &mut errors,
        "input.baseFee".into(),
        input.base_fee,
        Money::ZERO,
        MAX_FEE,
    );
    let threshold = input.free_threshold.map(|t| {
        money_in(
            &mut errors,
            "input.freeThreshold".into(),
            t,
            Money::from_fen(1),
            MAX_THRESHOLD,
        )
    });
    let mut surcharges: Vec<(String, Money)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, group) in input.surcharges.iter().enumerate() {
        let at = format!("input.surcharges[{i}]");
        let amount = money_in(
            &mut errors,
            format!("{at}.amount"),
            group.amount,
            Money::from_fen(1),
            MAX_FEE,
        );
        if group.province_codes.is_empty() {
            errors.push(format!("{at}.provinceCodes"), "must name a province");
        }
        for (j, code) in group.province_codes.iter().enumerate() {
            let field = format!("{at}.provinceCodes[{j}]");
            let code = code.trim();
            if regions::find(Level::Province, code).is_none() {
                errors.push(
                    field,
                    format!("{code:?} is not a province code of mainland China"),
                );
            } else if seen.contains(&code) {
                errors.push(field, format!("{code} has a surcharge already"));
            } else {
                seen.push(code);
                if let Some(amount) = amount {
                    surcharges.push((code.to_owned(), amount));
                }
            }
        }
    }
    errors.finish()?;
    surcharges.sort();
    let base_fee = base.ok_or_else(|| Error::internal(anyhow::anyhow!("base fee check lost")))?;
    Ok(Checked {
        base_fee,
        free_threshold: threshold.flatten(),
        surcharges,
    })
}

/// Sets (creates or replaces whole) the shipping rule of `merchant_id`, and writes the audit
/// entry `SHIPPING_RULE_SET` with the new rule and the one it replaced, in one transaction.
/// `NOT_FOUND` for an unknown merchant; `VALIDATION` naming every bad field.
pub async fn set_rule(
    db: &DatabaseConnection,
    actor: &Actor,
    merchant_id: Uuid,
    input: &RuleInput,
    now: DateTime<Utc>,
) -> Result<Rule> {
    let Checked {
        base_fee,
        free_threshold,
        surcharges,
    } = check(input)?;
    let txn = crate::db::begin_write(db).await?;
    // The merchant's row first: two admins setting one merchant's rule take turns, so each
    // reads as "previous" the rule the other committed.
    merchant::Entity::find_by_id(merchant_id)
        .select_only()
        .column(merchant::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .into_tuple::<Uuid>()
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("merchant"))?;
    let previous = rule(&txn, merchant_id).await?;
    let row = shipping_rule::Model {
        merchant_id,
        base_fee,
        free_threshold,
        created_at: previous.as_ref().map_or(now, |p| p.row.created_at),
        updated_at: now,
        updated_by: actor.member,
    };
    shipping_rule::Entity::insert(shipping_rule::ActiveModel::from(row.clone()))
        .on_conflict(
            OnConflict::column(shipping_rule::Column::MerchantId)
                .update_columns([
                    shipping_rule::Column::BaseFee,
                    shipping_rule::Column::FreeThreshold,
                    shipping_rule::Column::UpdatedAt,
                    shipping_rule::Column::UpdatedBy,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    shipping_surcharge::Entity::delete_many()
        .filter(shipping_surcharge::Column::MerchantId.eq(merchant_id))
        .exec(&txn)
        .await?;
    if !surcharges.is_empty() {
        shipping_surcharge::Entity::insert_many(surcharges.iter().map(|(code, amount)| {
            shipping_surcharge::ActiveModel {
                merchant_id: Set(merchant_id),
                province_code: Set(code.clone()),
                amount: Set(*amount),
            }
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    let rule = Rule { row, surcharges };
    let mut arguments = rule.to_json();
    arguments["previous"] = previous.as_ref().map_or(Value::Null, Rule::to_json);
    audit::record(
        &txn,
        actor,
        Action::ShippingRuleSet,
        Some((TargetType::Merchant, merchant_id)),
        arguments,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(rule)
}

/// The rule of `merchant_id`, if one was set.
pub async fn rule(db: &impl ConnectionTrait, merchant_id: Uuid) -> Result<Option<Rule>> {
    Ok(rules_of(db, [merchant_id]).await?.remove(&merchant_id))
}

/// The rules of `merchants` that exist, by merchant, with their surcharges: one statement
/// (the rules joined to their surcharges) whatever their number.
pub async fn rules_of(
    db: &impl ConnectionTrait,
    merchants: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Rule>> {
    use sea_orm::{JoinType, QuerySelect, RelationDef};
    let ids: Vec<Uuid> = merchants.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let surcharges: RelationDef = shipping_rule::Entity::belongs_to(shipping_surcharge::Entity)
        .from(shipping_rule::Column::MerchantId)
        .to(shipping_surcharge::Column::MerchantId)
        .into();
    let rows = shipping_rule::Entity::find()
        .filter(super::one_of(
            db,
            shipping_rule::Column::MerchantId,
            ids.iter().copied(),
        ))
        .join(JoinType::LeftJoin, surcharges)
        .select_also(shipping_surcharge::Entity)
        .order_by_asc(shipping_rule::Column::MerchantId)
        .order_by_asc(shipping_surcharge::Column::ProvinceCode)
        .all(db)
        .await?;
    let mut rules: HashMap<Uuid, Rule> = HashMap::with_capacity(ids.len());
    for (row, surcharge) in rows {
        let rule = rules.entry(row.merchant_id).or_insert_with(|| Rule {
            row,
            surcharges: Vec::new(),
        });
        if let Some(s) = surcharge {
            rule.surcharges.push((s.province_code, s.amount));
        }
    }
    Ok(rules)
}

async fn with_surcharges(
    db: &impl ConnectionTrait,
    rows: Vec<shipping_rule::Model>,
) -> Result<HashMap<Uuid, Rule>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let surcharges = shipping_surcharge::Entity::find()
        .filter(super::one_of(
            db,
            shipping_surcharge::Column::MerchantId,
            rows.iter().map(|r| r.merchant_id),
        ))
        .order_by_asc(shipping_surcharge::Column::ProvinceCode)
        .all(db)
        .await?;
    let mut rules: HashMap<Uuid, Rule> = rows
        .into_iter()
        .map(|row| {
            (
                row.merchant_id,
                Rule {
                    row,
                    surcharges: Vec::new(),
                },
            )
        })
        .collect();
    for s in surcharges {
        if let Some(rule) = rules.get_mut(&s.merchant_id) {
            rule.surcharges.push((s.province_code, s.amount));
        }
    }
    Ok(rules)
}

/// Every rule, newest first (by when it was first set), a page at a time.
pub async fn list(
    db: &impl ConnectionTrait,
    after: Option<&NewestCursor>,
    first: u64,
) -> Result<Page<Rule>> {
    let page = newest_first(
        db,
        shipping_rule::Entity::find(),
        shipping_rule::Column::CreatedAt,
        shipping_rule::Column::MerchantId,
        after,
        first,
    )
    .await?;
    let order: Vec<Uuid> = page.items.iter().map(|r| r.merchant_id).collect();
    let mut rules = with_surcharges(db, page.items).await?;
    Ok(Page {
        items: order.iter().filter_map(|id| rules.remove(id)).collect(),
        has_next: page.has_next,
    })
}

/// Why a parcel costs what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The merchant has no rule: free shipping, the platform's default (no surcharge either).
    NoRule,
    /// The base fee applies: no threshold, or the subtotal is below it.
    BaseFee,
    /// The subtotal reached the threshold: the base fee is waived.
    FreeOverThreshold,
}

/// The price of one merchant's parcel, with its parts and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    pub merchant_id: Uuid,
    /// The merchant's lines' subtotal the threshold was compared with.
    pub subtotal: Money,
    /// Destination province code.
    pub province_code: String,
    pub basis: Basis,
    /// The rule's base fee (zero without a rule), charged or waived by `basis`.
    pub base_fee: Money,
    pub free_threshold: Option<Money>,
    /// The destination province's surcharge (zero when the rule names none).
    pub surcharge: Money,
    /// What the buyer pays for the parcel: the base fee unless waived, plus the surcharge.
    pub fee: Money,
}

impl Quote {
    /// The reason in words, e.g. "base fee 10.00 waived: subtotal 120.00 reaches the
    /// free-shipping threshold 99.00; remote surcharge 20.00 to 新疆维吾尔自治区; fee 20.00".
    pub fn reason(&self) -> String {
        let mut out = match self.basis {
            Basis::NoRule => "no shipping rule for this merchant: free shipping".to_owned(),
            Basis::BaseFee => match self.free_threshold {
                Some(t) => format!(
                    "base fee {} (subtotal {} is below the free-shipping threshold {t})",
                    self.base_fee, self.subtotal
                ),
                None => format!("base fee {}", self.base_fee),
            },
            Basis::FreeOverThreshold => format!(
                "base fee {} waived: subtotal {} reaches the free-shipping threshold {}",
                self.base_fee,
                self.subtotal,
                self.free_threshold.unwrap_or(Money::ZERO)
            ),
        };
        if self.surcharge != Money::ZERO {
            let province = regions::find(Level::Province, &self.province_code)
                .map_or(self.province_code.as_str(), |p| p.name);
            let _ = write!(out, "; remote surcharge {} to {province}", self.surcharge);
        }
        let _ = write!(out, "; fee {}", self.fee);
        out
    }
}

/// The price of a parcel of `subtotal` from a merchant with `rule` to `province` (a
/// six-digit province code).
pub fn quote_parcel(
    merchant_id: Uuid,
    rule: Option<&Rule>,
    subtotal: Money,
    province: &str,
) -> Quote {
    let Some(rule) = rule else {
        return Quote {
            merchant_id,
            subtotal,
            province_code: province.to_owned(),
            basis: Basis::NoRule,
            base_fee: Money::ZERO,
            free_threshold: None,
            surcharge: Money::ZERO,
            fee: Money::ZERO,
        };
    };
    let waived = rule.row.free_threshold.is_some_and(|t| subtotal >= t);
    let surcharge = rule.surcharge_for(province);
    let base = if waived {
        Money::ZERO
    } else {
        rule.row.base_fee
    };
    Quote {
        merchant_id,
        subtotal,
        province_code: province.to_owned(),
        basis: if waived {
            Basis::FreeOverThreshold
        } else {
            Basis::BaseFee
        },
        base_fee: rule.row.base_fee,
        free_threshold: rule.row.free_threshold,
        surcharge,
        // Both are at most MAX_FEE.
        fee: Money::from_fen(base.fen() + surcharge.fen()),
    }
}

/// Prices the parcels of an order to `province` (a six-digit province code, e.g. the
/// address's): one quote per merchant, in the order merchants first appear in `subtotals`
/// ((merchant, subtotal of its lines) pairs; a merchant named twice has its subtotals
/// added). Reads the rules in two statements, whatever the number of merchants.
pub async fn quote(
    db: &impl ConnectionTrait,
    subtotals: &[(Uuid, Money)],
    province: &str,
) -> Result<Vec<Quote>> {
    let parcels = parcels_of(subtotals);
    let rules = rules_of(db, parcels.iter().map(|(m, _)| *m)).await?;
    Ok(quote_with(parcels, &rules, province))
}

/// [`quote`] with the rules already read (a cart checkout reads them with its lines,
/// [`super::cart::for_checkout_to`]): `rules` holds those of the merchants that have one, each
/// with at least its surcharge to `province`.
pub fn quote_by(
    subtotals: &[(Uuid, Money)],
    rules: &HashMap<Uuid, Rule>,
    province: &str,
) -> Vec<Quote> {
    quote_with(parcels_of(subtotals), rules, province)
}

/// The subtotal of each merchant's parcel, in the order merchants first appear.
fn parcels_of(subtotals: &[(Uuid, Money)]) -> Vec<(Uuid, Money)> {
    let mut parcels: Vec<(Uuid, Money)> = Vec::with_capacity(subtotals.len());
    for &(merchant, subtotal) in subtotals {
        match parcels.iter_mut().find(|(m, _)| *m == merchant) {
            Some((_, sum)) => *sum = Money::from_fen(sum.fen() + subtotal.fen()),
            None => parcels.push((merchant, subtotal)),
        }
    }
    parcels
}

fn quote_with(
    parcels: Vec<(Uuid, Money)>,
    rules: &HashMap<Uuid, Rule>,
    province: &str,
) -> Vec<Quote> {
    parcels
        .into_iter()
        .map(|(merchant, subtotal)| {
            quote_parcel(merchant, rules.get(&merchant), subtotal, province)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn money(s: &str) -> Money {
        Money::from_decimal(Decimal::from_str(s).expect("decimal")).expect("money")
    }

    fn rule(base: &str, threshold: Option<&str>, surcharges: &[(&str, &str)]) -> Rule {
        Rule {
            row: shipping_rule::Model {
                merchant_id: Uuid::nil(),
                base_fee: money(base),
                free_threshold: threshold.map(money),
                created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                updated_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                updated_by: Uuid::nil(),
            },
            surcharges: surcharges
                .iter()
                .map(|(c, a)| ((*c).to_owned(), money(a)))
                .collect(),
        }
    }

    fn fee(r: Option<&Rule>, subtotal: &str, province: &str) -> (String, Basis) {
        let q = quote_parcel(Uuid::nil(), r, money(subtotal), province);
        (q.fee.to_decimal().to_string(), q.basis)
    }

    #[test]
    fn threshold_boundaries_are_exact_to_the_fen() {
        let r = rule("10.00", Some("99.00"), &[]);
        let r = Some(&r);
        assert_eq!(fee(r, "0.01", "110000"), ("10.00".into(), Basis::BaseFee));
        assert_eq!(fee(r, "98.99", "110000"), ("10.00".into(), Basis::BaseFee));
        // 满 99 包邮: a subtotal equal to the threshold ships free.
        assert_eq!(
            fee(r, "99.00", "110000"),
            ("0.00".into(), Basis::FreeOverThreshold)
        );
        assert_eq!(
            fee(r, "99.01", "110000"),
            ("0.00".into(), Basis::FreeOverThreshold)
        );
        assert_eq!(
            fee(r, "100000.00", "110000"),
            ("0.00".into(), Basis::FreeOverThreshold)
        );
        // Without a threshold the base fee is never waived.
        let flat = rule("8.50", None, &[]);
        assert_eq!(
            fee(Some(&flat), "100000.00", "110000"),
            ("8.50".into(), Basis::BaseFee)
        );
        // A zero base fee: free unless the province has a surcharge.
        let zero = rule("0.00", None, &[("540000", "15.00")]);
        assert_eq!(
            fee(Some(&zero), "1.00", "110000"),
            ("0.00".into(), Basis::BaseFee)
        );
        assert_eq!(
            fee(Some(&zero), "1.00", "540000"),
            ("15.00".into(), Basis::BaseFee)
        );
    }

    #[test]
    fn remote_surcharges_add_even_when_the_base_fee_is_waived() {
        let r = rule(
            "10.00",
            Some("99.00"),
            &[("540000", "30.00"), ("650000", "20.00")],
        );
        let r = Some(&r);
        assert_eq!(fee(r, "50.00", "650000"), ("30.00".into(), Basis::BaseFee));
        assert_eq!(
            fee(r, "99.00", "650000"),
            ("20.00".into(), Basis::FreeOverThreshold)
        );
        assert_eq!(fee(r, "98.99", "540000"), ("40.00".into(), Basis::BaseFee));
        assert_eq!(fee(r, "98.99", "440000"), ("10.00".into(), Basis::BaseFee));
        let q = quote_parcel(Uuid::nil(), r, money("120.00"), "650000");
        assert_eq!(
            (q.base_fee, q.surcharge, q.fee),
            (money("10.00"), money("20.00"), money("20.00"))
        );
        assert_eq!(
            q.reason(),
            "base fee 10.00 waived: subtotal 120.00 reaches the free-shipping threshold 99.00; \
             remote surcharge 20.00 to 新疆维吾尔自治区; fee 20.00"
        );
        let q = quote_parcel(Uuid::nil(), r, money("12.34"), "540000");
        assert_eq!(
            q.reason(),
            "base fee 10.00 (subtotal 12.34 is below the free-shipping threshold 99.00); \
             remote surcharge 30.00 to 西藏自治区; fee 40.00"
        );
        // The exact decimal the API shows.
        assert_eq!(q.fee.to_decimal(), Decimal::from_str("40.00").expect("d"));
        assert_eq!(q.fee.to_decimal().to_string(), "40.00");
    }

    #[test]
    fn no_rule_is_free_shipping() {
        assert_eq!(fee(None, "0.01", "650000"), ("0.00".into(), Basis::NoRule));
        let q = quote_parcel(Uuid::nil(), None, money("5.00"), "650000");
        assert_eq!(
            q.reason(),
            "no shipping rule for this merchant: free shipping; fee 0.00"
        );
    }

    #[test]
    fn inputs_are_checked_field_by_field() {
        let d = |s: &str| Decimal::from_str(s).expect("decimal");
        let good = RuleInput {
            base_fee: d("10"),
            free_threshold: Some(d("99.00")),
            surcharges: vec![
                SurchargeInput {
                    province_codes: vec!["650000".into(), " 540000".into()],
                    amount: d("20.00"),
                },
                SurchargeInput {
                    province_codes: vec!["630000".into()],
                    amount: d("10.5"),
                },
            ],
        };
        let checked = check(&good).map_err(anyhow::Error::from).expect("ok");
        assert_eq!(
            checked,
            Checked {
                base_fee: money("10.00"),
                free_threshold: Some(money("99.00")),
                surcharges: vec![
                    ("540000".to_owned(), money("20.00")),
                    ("630000".to_owned(), money("10.50")),
                    ("650000".to_owned(), money("20.00")),
                ],
            }
        );
        let bad = RuleInput {
            base_fee: d("-1"),
            free_threshold: Some(d("0")),
            surcharges: vec![
                SurchargeInput {
                    province_codes: vec!["650000".into(), "110100".into()],
                    amount: d("0.001"),
                },
                SurchargeInput {
                    province_codes: vec![],
                    amount: d("5"),
                },
                SurchargeInput {
                    province_codes: vec!["540000".into(), "540000".into()],
                    amount: d("1000.01"),
                },
            ],
        };
        let err = check(&bad).expect_err("invalid");
        let fields: Vec<&str> = err.fields().iter().map(|f| &*f.field).collect();
        assert_eq!(
            fields,
            [
                "input.baseFee",
                "input.freeThreshold",
                "input.surcharges[0].amount",
                "input.surcharges[0].provinceCodes[1]",
                "input.surcharges[1].provinceCodes",
                "input.surcharges[2].amount",
                "input.surcharges[2].provinceCodes[1]",
            ]
        );
        let max = RuleInput {
            base_fee: d("1000.00"),
            free_threshold: Some(d("1000000.00")),
            surcharges: vec![],
        };
        assert!(check(&max).is_ok());
    }
}
