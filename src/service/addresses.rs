//! Members' delivery addresses (收货地址).
//!
//! An address has a recipient, a mainland mobile number (stored E.164, `+8613812345678`), a
//! province, city and district from the region list ([`super::regions`]: codes that exist and
//! nest), a detail line, an optional postal code and a default flag. Every bad field of an
//! input is reported in one `VALIDATION` error ([`crate::error::FieldErrors`]).
//!
//! Rules:
//! - at most [`MAX_PER_MEMBER`] addresses per member (`ADDRESS_LIMIT_REACHED` beyond);
//! - a member with addresses has exactly one default: the first address becomes the
//!   default; `isDefault: true` on an add or an update, or [`set_default`], moves it; removing
//!   the default makes the newest remaining address the default;
//! - listed default first, then newest first;
//! - another member's address is `NOT_FOUND`, exactly like one that does not exist.
//!
//! Concurrency: every write runs in one transaction that first takes the member's row
//! (`SELECT … FOR NO KEY UPDATE` on PostgreSQL, which leaves foreign-key checks of other
//! writes free; SQLite's write lock at `BEGIN` on SQLite), so a member's address writes run one
//! at a time and the count and the default are read and changed by one writer. The database
//! backs the default rule up: a partial unique index allows one default per member at most.

use chrono::{DateTime, Utc};
use entity::address;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::regions::{self, Place};
use crate::error::{Error, FieldErrors, Result};
use crate::events::{Event, Events, Kind};

/// The most addresses one member may keep.
pub const MAX_PER_MEMBER: u64 = 20;
/// Longest recipient name, in characters.
pub const MAX_RECIPIENT_CHARS: usize = 32;
/// Shortest and longest detail line (street, building, room), in characters.
pub const DETAIL_CHARS: std::ops::RangeInclusive<usize> = 2..=120;

/// An address as the client sends it (`addAddress`, `updateAddress`).
#[derive(Clone, Debug, Default)]
pub struct AddressInput {
    pub recipient_name: String,
    pub phone: String,
    pub province_code: String,
    pub city_code: String,
    pub district_code: String,
    pub detail: String,
    /// Absent or blank: none.
    pub postal_code: Option<String>,
    /// `true` makes the address the default; `false` or absent leaves the default where it
    /// is (the first address is the default whatever this says).
    pub is_default: Option<bool>,
}

/// An input whose every field passed.
struct Checked {
    recipient_name: String,
    phone: String,
    place: Place,
    detail: String,
    postal_code: Option<String>,
}

/// A mainland China mobile number in E.164 (`+8613812345678`): 11 digits, the first `1` and
/// the second 3–9, optionally after `+86`, `0086` or `86`, with spaces, dashes and brackets
/// anywhere (`+86 138-1234-5678`, `(+86) 138 1234 5678`). Anything else is `VALIDATION` on
/// `field`: landlines, other countries, short or long numbers.
pub fn mainland_mobile(field: &'static str, raw: &str) -> Result<String> {
    let s: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let national = s
        .strip_prefix("+86")
        .or_else(|| s.strip_prefix("0086"))
        .or_else(|| s.strip_prefix("86").filter(|rest| rest.len() == 11))
        .unwrap_or(&s);
    let b = national.as_bytes();
    let ok = b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1]);
    if !ok {
        return Err(Error::validation(
            field,
            "must be a mainland China mobile number: 11 digits starting 13 to 19, optionally after +86",
        ));
    }
    Ok(format!("+86{national}"))
}

/// A postal code: six ASCII digits; blank is none.
fn postal_code(field: &'static str, raw: Option<&str>) -> Result<Option<String>> {
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(s.to_owned()))
    } else {
        Err(Error::validation(field, "must be six digits"))
    }
}

/// Checks every field of `input`, reporting all the bad ones at once as `input.<field>`.
fn check(input: &AddressInput) -> Result<Checked> {
    let mut errors = FieldErrors::default();
    let recipient_name = errors.check(super::text::name(
        "input.recipientName",
        &input.recipient_name,
        MAX_RECIPIENT_CHARS,
    ));
    let phone = errors.check(mainland_mobile("input.phone", &input.phone));
    let place = regions::check_place(
        &mut errors,
        "input.",
        &input.province_code,
        &input.city_code,
        &input.district_code,
    );
    let detail = errors.check(
        super::text::name("input.detail", &input.detail, *DETAIL_CHARS.end()).and_then(|d| {
            if d.chars().count() < *DETAIL_CHARS.start() {
                Err(Error::validation(
                    "input.detail",
                    format!("must be at least {} characters", DETAIL_CHARS.start()),
                ))
            } else {
                Ok(d)
            }
        }),
    );
    let postal_code = errors.check(postal_code(
        "input.postalCode",
        input.postal_code.as_deref(),
    ));
    errors.finish()?;
    match (recipient_name, phone, place, detail, postal_code) {
        (Some(recipient_name), Some(phone), Some(place), Some(detail), Some(postal_code)) => {
            Ok(Checked {
                recipient_name,
                phone,
                place,
                detail,
                postal_code,
            })
        }
        // `finish` passed, so every check gave its value.
        _ => Err(Error::internal(anyhow::anyhow!(
            "address check lost a field"
        ))),
    }
}

/// The member's addresses: the default first, then newest first.
pub async fn list(db: &impl ConnectionTrait, member_id: Uuid) -> Result<Vec<address::Model>> {
    Ok(address::Entity::find()
        .filter(address::Column::MemberId.eq(member_id))
        .order_by_desc(address::Column::IsDefault)
        .order_by_desc(address::Column::CreatedAt)
        .order_by_desc(address::Column::Id)
        .all(db)
        .await?)
}

/// The member's address `id`; `NOT_FOUND` when it does not exist or is another member's.
pub async fn get(db: &impl ConnectionTrait, member_id: Uuid, id: Uuid) -> Result<address::Model> {
    address::Entity::find_by_id(id)
        .filter(address::Column::MemberId.eq(member_id))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("address"))
}

/// Clears the member's default (the caller sets the new one in the same transaction).
async fn clear_default(
    txn: &impl ConnectionTrait,
    member_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    address::Entity::update_many()
        .col_expr(address::Column::IsDefault, Expr::value(false))
        .col_expr(address::Column::UpdatedAt, Expr::value(now))
        .filter(address::Column::MemberId.eq(member_id))
        .filter(address::Column::IsDefault.eq(true))
        .exec(txn)
        .await?;
    Ok(())
}

fn fill(model: &mut address::ActiveModel, c: Checked) {
    model.recipient_name = Set(c.recipient_name);
    model.phone = Set(c.phone);
    model.province_code = Set(c.place.province.code.to_owned());
    model.province_name = Set(c.place.province.name.to_owned());
    model.city_code = Set(c.place.city.code.to_owned());
    model.city_name = Set(c.place.city.name.to_owned());
    model.district_code = Set(c.place.district.code.to_owned());
    model.district_name = Set(c.place.district.name.to_owned());
    model.detail = Set(c.detail);
    model.postal_code = Set(c.postal_code);
}

/// Adds an address. The member's first address is the default, and so is one added with
/// `isDefault: true`. A member at the limit gets `ADDRESS_LIMIT_REACHED`.
pub async fn add(
    db: &DatabaseConnection,
    events: &Events,
    member_id: Uuid,
    input: &AddressInput,
    now: DateTime<Utc>,
) -> Result<address::Model> {
    let checked = check(input)?;
    let txn = super::begin_as_member(db, member_id).await?;
    let count = address::Entity::find()
        .filter(address::Column::MemberId.eq(member_id))
        .count(&txn)
        .await?;
    if count >= MAX_PER_MEMBER {
        return Err(Error::rule(
            "ADDRESS_LIMIT_REACHED",
            format!("a member keeps at most {MAX_PER_MEMBER} addresses: remove one first"),
        ));
    }
    let is_default = count == 0 || input.is_default == Some(true);
    if is_default && count > 0 {
        clear_default(&txn, member_id, now).await?;
    }
    let mut model = address::ActiveModel {
        id: Set(Uuid::now_v7()),
        member_id: Set(member_id),
        is_default: Set(is_default),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    fill(&mut model, checked);
    let row = model.insert(&txn).await?;
    txn.commit().await?;
    changed(events, member_id).await;
    Ok(row)
}

/// Replaces every field of the member's address `id` with `input` (a blank postal code
/// clears it). `isDefault: true` makes it the default; `false` or absent leaves the default
/// as it is — a default stops being one only when another address becomes the default.
pub async fn update(
    db: &DatabaseConnection,
    events: &Events,
    member_id: Uuid,
    id: Uuid,
    input: &AddressInput,
    now: DateTime<Utc>,
) -> Result<address::Model> {
    let checked = check(input)?;
    let txn = super::begin_as_member(db, member_id).await?;
    let row = get(&txn, member_id, id).await?;
    let make_default = input.is_default == Some(true) && !row.is_default;
    if make_default {
        clear_default(&txn, member_id, now).await?;
    }
    let mut model: address::ActiveModel = row.into();
    fill(&mut model, checked);
    if make_default {
        model.is_default = Set(true);
    }
    model.updated_at = Set(now);
    let row = model.update(&txn).await?;
    txn.commit().await?;
    changed(events, member_id).await;
    Ok(row)
}

/// Makes the member's address `id` the default (the previous default stops being one).
pub async fn set_default(
    db: &DatabaseConnection,
    events: &Events,
    member_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<address::Model> {
    let txn = super::begin_as_member(db, member_id).await?;
    let row = get(&txn, member_id, id).await?;
    if row.is_default {
        return Ok(row);
    }
    clear_default(&txn, member_id, now).await?;
    let mut model: address::ActiveModel = row.into();
    model.is_default = Set(true);
    model.updated_at = Set(now);
    let row = model.update(&txn).await?;
    txn.commit().await?;
    changed(events, member_id).await;
    Ok(row)
}

/// Removes the member's address `id`. When it was the default, the newest remaining address
/// becomes the default. Returns the addresses left, as [`list`] orders them.
pub async fn remove(
    db: &DatabaseConnection,
    events: &Events,
    member_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<address::Model>> {
    let txn = super::begin_as_member(db, member_id).await?;
    let row = get(&txn, member_id, id).await?;
    address::Entity::delete_by_id(row.id).exec(&txn).await?;
    if row.is_default {
        let newest = address::Entity::find()
            .filter(address::Column::MemberId.eq(member_id))
            .order_by_desc(address::Column::CreatedAt)
            .order_by_desc(address::Column::Id)
            .one(&txn)
            .await?;
        if let Some(newest) = newest {
            let mut model: address::ActiveModel = newest.into();
            model.is_default = Set(true);
            model.updated_at = Set(now);
            model.update(&txn).await?;
        }
    }
    let left = list(&txn, member_id).await?;
    txn.commit().await?;
    changed(events, member_id).await;
    Ok(left)
}

/// Tells every cache that `member`'s own views changed (its addresses are one of them), after
/// the write committed.
async fn changed(events: &Events, member: Uuid) {
    events
        .publish(vec![Event::new(member, Kind::OwnChanged, member)])
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_mobiles_are_normalised_to_e164() {
        for (raw, e164) in [
            ("13812345678", "+8613812345678"),
            ("+86 138 1234 5678", "+8613812345678"),
            ("+86-138-1234-5678", "+8613812345678"),
            ("(+86) 138-1234-5678", "+8613812345678"),
            ("008613812345678", "+8613812345678"),
            ("8613812345678", "+8613812345678"),
            (" 199 0000 0000 ", "+8619900000000"),
            ("16612345678", "+8616612345678"),
        ] {
            assert_eq!(mainland_mobile("phone", raw).expect(raw), e164, "{raw}");
        }
        for bad in [
            "",
            "12812345678",   // second digit 2
            "10812345678",   // second digit 0
            "23812345678",   // not starting 1
            "1381234567",    // 10 digits
            "138123456789",  // 12 digits
            "+1 4155550123", // not mainland
            "+85261234567",  // Hong Kong
            "010-12345678",  // landline
            "138 1234 567a",
            "１３８１２３４５６７８", // full-width digits
            "+86+8613812345678",
        ] {
            let err = mainland_mobile("input.phone", bad).expect_err(bad);
            assert_eq!(
                (err.code(), err.field()),
                ("VALIDATION", Some("input.phone"))
            );
        }
    }

    fn input() -> AddressInput {
        AddressInput {
            recipient_name: "王小明".into(),
            phone: "138 1234 5678".into(),
            province_code: "110000".into(),
            city_code: "110100".into(),
            district_code: "110105".into(),
            detail: "建国路 88 号 SOHO 现代城 1 号楼 1001".into(),
            postal_code: Some("100022".into()),
            is_default: None,
        }
    }

    #[test]
    fn a_good_input_passes() {
        let c = check(&input()).map_err(anyhow::Error::from).expect("valid");
        assert_eq!(c.phone, "+8613812345678");
        assert_eq!(c.place.text(), "北京市朝阳区");
        assert_eq!(c.postal_code.as_deref(), Some("100022"));
        let blank = AddressInput {
            postal_code: Some("  ".into()),
            ..input()
        };
        assert_eq!(check(&blank).ok().and_then(|c| c.postal_code), None);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let bad = AddressInput {
            recipient_name: " ".into(),
            phone: "12345".into(),
            province_code: "110000".into(),
            city_code: "120100".into(),
            district_code: "999999".into(),
            detail: "x".into(),
            postal_code: Some("1000".into()),
            is_default: None,
        };
        let err = check(&bad).err().expect("invalid");
        assert_eq!(err.code(), "VALIDATION");
        let fields: Vec<&str> = err.fields().iter().map(|f| &*f.field).collect();
        assert_eq!(
            fields,
            [
                "input.recipientName",
                "input.phone",
                "input.cityCode",
                "input.districtCode",
                "input.detail",
                "input.postalCode",
            ]
        );
        assert_eq!(err.field(), Some("input.recipientName"));
        let long = AddressInput {
            detail: "路".repeat(121),
            recipient_name: "名".repeat(33),
            ..input()
        };
        let err = check(&long).err().expect("too long");
        let fields: Vec<&str> = err.fields().iter().map(|f| &*f.field).collect();
        assert_eq!(fields, ["input.recipientName", "input.detail"]);
        let hidden = AddressInput {
            detail: "1 号楼\u{202E}1001".into(),
            ..input()
        };
        assert!(check(&hidden).is_err());
        let ok = AddressInput {
            detail: "路".repeat(120),
            recipient_name: "名".repeat(32),
            ..input()
        };
        assert!(check(&ok).is_ok());
    }
}
