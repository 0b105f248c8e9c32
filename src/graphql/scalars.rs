//! Custom scalars. `Decimal` carries money and rates as strings ("12.30", "0.15").
//!
//! async-graphql's own decimal scalar also accepts JSON numbers by way of `f64`; ours takes
//! strings only (and integers, which are exact), so no float ever touches an amount.
//!
//! Inputs are read strictly ([`parse_plain`]): an optional '-', digits, and an optional '.'
//! with at most [`MAX_PLACES`] digits after it. `rust_decimal`'s own parser rounds what does
//! not fit its 28 digits ("9.9999999999999999999999999999" became 10) and accepts exponents
//! and '_' separators ("1e1", "1_0.0_0"): a payment or a withdrawal must be exactly what the
//! client wrote, or refused (`VALIDATION`). Money fields further refuse more than 2 places
//! ([`Dec::money`]).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use rust_decimal::Decimal;

use crate::error::Error;

/// The most decimal places an input may carry: rates have 4 (0.1500), money 2.
pub const MAX_PLACES: usize = 4;

/// The most digits before the point: far above any amount (10^15 fen fit an `i64`).
const MAX_INTEGER_DIGITS: usize = 15;

/// Reads a plain decimal (`-?[0-9]+(\.[0-9]{1,4})?`) exactly, or says why not. No exponent,
/// separator, sign '+', whitespace or rounding.
pub fn parse_plain(s: &str) -> Result<Decimal, &'static str> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err("not a plain decimal number (digits, an optional '.' and decimals)");
    }
    if int.len() > MAX_INTEGER_DIGITS {
        return Err("too large");
    }
    let frac = frac.unwrap_or("");
    if frac.len() > MAX_PLACES {
        return Err("too many decimal places (money takes 2, rates 4)");
    }
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        // At most 15 + 4 = 19 digits: far inside an i128 and a Decimal's 96 bits.
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    if s.starts_with('-') {
        mantissa = -mantissa;
    }
    Ok(Decimal::from_i128_with_scale(mantissa, frac.len() as u32))
}

impl Dec {
    /// This input as money on `field`: at most 2 decimal places and not negative, else
    /// `VALIDATION` naming the field.
    pub fn money(self, field: &'static str) -> Result<entity::Money, Error> {
        if self.0.scale() > 2 {
            return Err(Error::validation(field, "at most 2 decimal places"));
        }
        if self.0.is_sign_negative() && !self.0.is_zero() {
            return Err(Error::validation(field, "must not be negative"));
        }
        entity::Money::from_decimal(self.0).ok_or_else(|| Error::validation(field, "too large"))
    }
}

/// A decimal number as a string; see the scalar's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dec(pub Decimal);

/// A decimal number written as a string: money in CNY with two places ("12.30") or a rate as
/// a fraction ("0.15" = 15 %). Inputs must be strings (integers are accepted too); floats are
/// refused so that no amount is ever rounded on the way in. Inputs are plain decimals: an
/// optional '-', digits, and at most 4 places after a '.' (money takes 2); exponents, '_'
/// separators and spaces are refused (`VALIDATION`).
#[Scalar(name = "Decimal")]
impl ScalarType for Dec {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_plain(s).map(Dec).map_err(|why| {
                InputValueError::custom(format!("{:?}: {why}", truncated(s)))
                    .with_extension("code", "VALIDATION")
            }),
            Value::Number(n) if n.is_i64() => {
                let i = n.as_i64().unwrap_or_default();
                parse_plain(&i.to_string()).map(Dec).map_err(|why| {
                    InputValueError::custom(format!("{i}: {why}"))
                        .with_extension("code", "VALIDATION")
                })
            }
            _ => Err(InputValueError::custom(
                "expected a decimal number as a string, e.g. \"12.30\"",
            )
            .with_extension("code", "VALIDATION")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(decimal_text(self.0))
    }
}

/// A JSON value as the `JSON` scalar (see its description). Ours rather than async-graphql's
/// `Json`, whose scalar cannot name its specification (`@specifiedBy`).
#[derive(Clone, Debug, PartialEq)]
pub struct JsonValue(pub serde_json::Value);

/// Any JSON value (RFC 8259), sent as itself: an object, an array, a string, a number, a
/// boolean or null. Used for free-form data whose shape the field's description gives.
#[Scalar(
    name = "JSON",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc8259"
)]
impl ScalarType for JsonValue {
    fn parse(value: Value) -> InputValueResult<Self> {
        value
            .into_json()
            .map(JsonValue)
            .map_err(InputValueError::custom)
    }

    fn to_value(&self) -> Value {
        // Every serde_json value has a GraphQL value (numbers stay numbers).
        Value::from_json(self.0.clone()).unwrap_or(Value::Null)
    }
}

/// A `Decimal` argument kept as the client sent it, read where its field is known: a bad
/// amount is then `VALIDATION` naming the field (`extensions.field`), where the scalar's own
/// refusal can only say that some `Decimal` was bad. Registers as the `Decimal` scalar, so
/// the schema does not change.
#[derive(Clone, Debug)]
pub struct DecArg(Value);

impl async_graphql::InputType for DecArg {
    type RawValueType = Self;

    fn type_name() -> std::borrow::Cow<'static, str> {
        <Dec as async_graphql::InputType>::type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <Dec as async_graphql::InputType>::create_type_info(registry)
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        Ok(DecArg(value.unwrap_or_default()))
    }

    fn to_value(&self) -> Value {
        self.0.clone()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }
}

impl DecArg {
    /// The argument as a plain decimal on `field` (any sign and number of places: the
    /// caller checks its range); anything else is `VALIDATION` naming the field.
    pub fn decimal(&self, field: &'static str) -> Result<Decimal, Error> {
        match &self.0 {
            Value::String(s) => parse_plain(s).map_err(|why| Error::validation(field, why)),
            Value::Number(n) if n.is_i64() => Ok(Decimal::from(n.as_i64().unwrap_or_default())),
            _ => Err(Error::validation(
                field,
                "expected a decimal number as a string, e.g. \"0.15\"",
            )),
        }
    }

    /// The argument as money on `field` (see [`Dec::money`]); anything but a plain decimal
    /// with at most 2 places is `VALIDATION` naming the field.
    pub fn money(&self, field: &'static str) -> Result<entity::Money, Error> {
        let d = match &self.0 {
            Value::String(s) => parse_plain(s).map_err(|why| Error::validation(field, why))?,
            Value::Number(n) if n.is_i64() => Decimal::from(n.as_i64().unwrap_or_default()),
            _ => {
                return Err(Error::validation(
                    field,
                    "expected a decimal number as a string, e.g. \"12.30\"",
                ));
            }
        };
        Dec(d).money(field)
    }
}

/// At most 40 characters of a refused input, for the error message.
fn truncated(s: &str) -> &str {
    s.char_indices().nth(40).map_or(s, |(i, _)| &s[..i])
}

/// `d` exactly as `Decimal`'s `Display` writes it ("10.00", "-0.50", "3"), without the
/// formatting machinery: a page of products writes ~170 prices.
fn decimal_text(d: Decimal) -> String {
    let mut text = Vec::with_capacity(24);
    write_decimal(d, &mut text);
    // Only ASCII digits, '-' and '.' were written.
    String::from_utf8(text).unwrap_or_default()
}

/// Appends `d` as [`decimal_text`] writes it.
pub fn write_decimal(d: Decimal, out: &mut Vec<u8>) {
    let scale = d.scale() as usize;
    // The mantissa's digits, last first, padded with zeros to at least `scale` of them.
    let mut digits = [b'0'; 40];
    let mut n = 0;
    let mut rest = d.mantissa().unsigned_abs();
    while rest > 0 {
        digits[n] = b'0' + (rest % 10) as u8;
        rest /= 10;
        n += 1;
    }
    let n = n.max(scale);
    if d.is_sign_negative() {
        out.push(b'-');
    }
    if n == scale {
        out.push(b'0');
    }
    out.extend(digits[scale..n].iter().rev());
    if scale > 0 {
        out.push(b'.');
        out.extend(digits[..scale].iter().rev());
    }
}

impl From<entity::Money> for Dec {
    fn from(m: entity::Money) -> Dec {
        Dec(m.to_decimal())
    }
}

impl From<entity::Rate> for Dec {
    fn from(r: entity::Rate) -> Dec {
        Dec(r.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Clients see the same text as before: `Decimal`'s own, for every mantissa, scale
        /// and sign.
        #[test]
        fn decimals_are_written_as_decimal_writes_them(
            lo in any::<u32>(), mid in any::<u32>(), hi in any::<u32>(),
            negative in any::<bool>(), scale in 0u32..=28, small in any::<bool>(),
        ) {
            let (mid, hi) = if small { (0, 0) } else { (mid, hi) };
            let d = Decimal::from_parts(lo, mid, hi, negative, scale);
            prop_assert_eq!(decimal_text(d), d.to_string());
        }
    }

    #[test]
    fn plain_decimals_only() {
        for bad in [
            "9.9999999999999999999999999999",
            "3542.900000000000000000000000001",
            "1e1",
            "1E1",
            "1_0.0_0",
            " 10.00",
            "10.00 ",
            "+10",
            "10.",
            ".5",
            "",
            "-",
            "1.00000",
            "0x10",
            "NaN",
            "1234567890123456",
            "١٠",
        ] {
            assert!(parse_plain(bad).is_err(), "{bad:?} must be refused");
        }
        for (good, want) in [
            ("10", Decimal::new(10, 0)),
            ("10.00", Decimal::new(1000, 2)),
            ("0.1500", Decimal::new(1500, 4)),
            ("-0.50", Decimal::new(-50, 2)),
            ("3542.9", Decimal::new(35429, 1)),
            (
                "999999999999999.9999",
                Decimal::from_i128_with_scale(9_999_999_999_999_999_999, 4),
            ),
        ] {
            let got = parse_plain(good).expect(good);
            assert_eq!(got, want);
            assert_eq!(got.scale(), want.scale());
        }
    }

    #[test]
    fn money_takes_two_places() {
        assert!(Dec(Decimal::new(10000, 3)).money("amount").is_err());
        assert!(Dec(Decimal::new(-1, 2)).money("amount").is_err());
        assert_eq!(
            Dec(Decimal::new(1001, 2)).money("amount").ok(),
            Some(entity::Money::from_fen(1001))
        );
    }

    #[test]
    fn zeros_and_money() {
        for (d, text) in [
            (Decimal::new(1000, 2), "10.00"),
            (Decimal::new(-50, 2), "-0.50"),
            (Decimal::new(5, 2), "0.05"),
            (Decimal::new(0, 2), "0.00"),
            (Decimal::new(0, 0), "0"),
            (Decimal::new(15, 2), "0.15"),
            (Decimal::new(123, 0), "123"),
        ] {
            assert_eq!(decimal_text(d), text);
            assert_eq!(d.to_string(), text);
        }
    }
}
