//! Custom scalars. `Decimal` carries money and rates as strings ("12.30", "0.15").
//!
//! async-graphql's own decimal scalar also accepts JSON numbers by way of `f64`; ours takes
//! strings only (and integers, which are exact), so no float ever touches an amount.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use rust_decimal::Decimal;
use std::str::FromStr;

/// A decimal number as a string; see the scalar's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dec(pub Decimal);

/// A decimal number written as a string: money in CNY with two places ("12.30") or a rate as
/// a fraction ("0.15" = 15 %). Inputs must be strings (integers are accepted too); floats are
/// refused so that no amount is ever rounded on the way in.
#[Scalar(name = "Decimal")]
impl ScalarType for Dec {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Decimal::from_str(s.trim())
                .map(Dec)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a decimal number"))),
            Value::Number(n) if n.is_i64() => {
                Ok(Dec(Decimal::from(n.as_i64().unwrap_or_default())))
            }
            _ => Err(InputValueError::custom(
                "expected a decimal number as a string, e.g. \"12.30\"",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(decimal_text(self.0))
    }
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
