//! Deserializing through a check that runs inside the deserializer's own
//! call, so that `toml` attaches the offending value's span to the error
//! and the server's configuration loader can name its line and key (the
//! same approach as `crates/server/src/config.rs`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};

/// Deserializes a string through `FromStr`.
pub(crate) fn via_str<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    struct V<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr<Err = String>> de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, std::marker::PhantomData))
}

/// Deserializes an integer in `min..=max` as a `u32`.
pub(crate) fn u32_in<'de, D>(d: D, min: u32, max: u32) -> Result<u32, D::Error>
where
    D: Deserializer<'de>,
{
    struct V(u32, u32);
    impl V {
        fn check<E: de::Error>(&self, v: i128) -> Result<u32, E> {
            if (i128::from(self.0)..=i128::from(self.1)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::custom(format!(
                    "must be between {} and {}, not {v}",
                    self.0, self.1
                )))
            }
        }
    }
    impl de::Visitor<'_> for V {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an integer from {} to {}", self.0, self.1)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            self.check(i128::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            self.check(i128::from(v))
        }
    }
    d.deserialize_i64(V(min, max))
}
