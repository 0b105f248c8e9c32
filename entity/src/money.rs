//! Exact money and rate values as they are stored.
//!
//! Money is kept as a whole number of fen (0.01 CNY) in a BIGINT column, and rates as whole
//! basis points (0.0001) in an INTEGER column. Why not a DECIMAL column: SQLite has no decimal
//! type (a NUMERIC column silently turns "12.30" into the float 12.3), and integers are exact,
//! sortable and summable on SQLite and PostgreSQL alike. The API and the rules work in
//! `rust_decimal::Decimal`; conversions here are exact or say they are not.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sea_orm::DeriveValueType;

/// An amount of CNY with exactly two decimal places, stored as integer fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, DeriveValueType)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// Builds an amount from whole fen (1 yuan = 100 fen).
    pub const fn from_fen(fen: i64) -> Money {
        Money(fen)
    }

    /// The amount in whole fen.
    pub const fn fen(self) -> i64 {
        self.0
    }

    /// The amount as a decimal with scale 2, so it prints as "12.30".
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Exact conversion: `None` when `d` has a non-zero digit past the fen or is out of range.
    pub fn from_decimal(d: Decimal) -> Option<Money> {
        let fen = d.checked_mul(Decimal::ONE_HUNDRED)?;
        if !fen.fract().is_zero() {
            return None;
        }
        fen.to_i64().map(Money)
    }

    /// Rounds down (toward negative infinity) to the fen: a computed payout never exceeds
    /// its budget. `None` when out of range.
    pub fn floor_from_decimal(d: Decimal) -> Option<Money> {
        d.checked_mul(Decimal::ONE_HUNDRED)?
            .floor()
            .to_i64()
            .map(Money)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_decimal().fmt(f)
    }
}

/// A proportion between 0 and 1 with four decimal places (0.1500 = 15 %), stored as basis
/// points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, DeriveValueType)]
pub struct Rate(i32);

impl Rate {
    pub const ZERO: Rate = Rate(0);
    /// 100 %.
    pub const ONE: Rate = Rate(10_000);

    /// Builds a rate from basis points (1 bp = 0.01 %).
    pub const fn from_bp(bp: i32) -> Rate {
        Rate(bp)
    }

    /// The rate in basis points.
    pub const fn bp(self) -> i32 {
        self.0
    }

    /// The rate as a normalised decimal: 1500 bp prints as "0.15".
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(i64::from(self.0), 4).normalize()
    }

    /// Exact conversion: `None` when `d` has more than four decimal places or is outside 0–1.
    pub fn from_decimal(d: Decimal) -> Option<Rate> {
        if d.is_sign_negative() || d > Decimal::ONE {
            return None;
        }
        let bp = d.checked_mul(Decimal::from(10_000))?;
        if !bp.fract().is_zero() {
            return None;
        }
        bp.to_i32().map(Rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("test literal")
    }

    #[test]
    fn money_round_trips_exactly_and_prints_two_places() {
        let m = Money::from_decimal(dec("12.3")).expect("valid");
        assert_eq!(m.fen(), 1230);
        assert_eq!(m.to_decimal().to_string(), "12.30");
        assert_eq!(Money::from_decimal(dec("0.001")), None);
        assert_eq!(
            Money::from_decimal(dec("-4.50")),
            Some(Money::from_fen(-450))
        );
    }

    #[test]
    fn money_floor_never_rounds_up() {
        assert_eq!(
            Money::floor_from_decimal(dec("1.239")),
            Some(Money::from_fen(123))
        );
        assert_eq!(
            Money::floor_from_decimal(dec("-1.231")),
            Some(Money::from_fen(-124))
        );
    }

    #[test]
    fn rate_accepts_four_places_within_unit_interval() {
        assert_eq!(Rate::from_decimal(dec("0.15")), Some(Rate::from_bp(1500)));
        assert_eq!(Rate::from_bp(1500).to_decimal().to_string(), "0.15");
        assert_eq!(Rate::from_decimal(dec("0.00005")), None);
        assert_eq!(Rate::from_decimal(dec("1.01")), None);
        assert_eq!(Rate::from_decimal(dec("-0.01")), None);
    }
}
