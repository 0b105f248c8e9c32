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
        Value::String(self.0.to_string())
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
