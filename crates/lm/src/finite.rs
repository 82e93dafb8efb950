//! Floats that JSON cannot spell. serde_json writes NaN and ±∞ as `null` and then refuses to
//! read `null` back into an `f64`, so one diverged evaluation would make a checkpoint's history
//! unreadable and drop the worker's event on the page's side. Here non-finite numbers are
//! written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (the spellings JavaScript's
//! `Number()` parses) and read back from either form; finite numbers stay JSON numbers.
//!
//! Use with `#[serde(with = "crate::finite")]` on an `f64` and
//! `#[serde(with = "crate::finite::option")]` on an `Option<f64>`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The string a non-finite number is written as (`None` for finite numbers).
pub fn spelling(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// A float as a JSON value, non-finite ones spelled out.
pub fn to_json(v: f64) -> serde_json::Value {
    match spelling(v) {
        Some(s) => serde_json::Value::from(s),
        None => serde_json::Value::from(v),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
}

impl Repr {
    fn value<E: serde::de::Error>(self) -> Result<f64, E> {
        match self {
            Repr::Number(v) => Ok(v),
            Repr::Text(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => {
                    Err(E::custom(format!("expected a number, \"NaN\" or \"±Infinity\", got \"{other}\"")))
                }
            },
        }
    }
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match spelling(*v) {
        Some(text) => s.serialize_str(text),
        None => s.serialize_f64(*v),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Repr::deserialize(d)?.value()
}

/// The same for `Option<f64>`: `None` is `null`.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<Repr>::deserialize(d)?.map(Repr::value).transpose()
    }
}

/// The same for `f32` (probabilities, logit differences).
pub mod f32 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(&f64::from(*v), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(Repr::deserialize(d)?.value::<D::Error>()? as f32)
    }
}

/// A wrapper that serialises like [`serialize`], for values built on the fly (`--json` lines).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lossless(pub f64);

impl Serialize for Lossless {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Point {
        #[serde(with = "super")]
        loss: f64,
        #[serde(with = "super::option")]
        val: Option<f64>,
    }

    #[test]
    fn non_finite_numbers_round_trip_through_json() {
        for (loss, val) in [(f64::NAN, Some(f64::INFINITY)), (f64::NEG_INFINITY, None), (1.5, Some(2.0))] {
            let json = serde_json::to_string(&Point { loss, val }).unwrap();
            let back: Point = serde_json::from_str(&json).unwrap();
            assert!(back.loss == loss || (back.loss.is_nan() && loss.is_nan()), "{json}");
            assert_eq!(back.val, val, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Point { loss: f64::NAN, val: None }).unwrap(),
            r#"{"loss":"NaN","val":null}"#
        );
    }

    #[test]
    fn other_strings_are_errors() {
        assert!(serde_json::from_str::<Point>(r#"{"loss":"lots","val":null}"#).is_err());
    }
}
