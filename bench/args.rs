//! Command-line flags shared by the benchmarks: `--name value`, comma-separated lists, and
//! `--smoke`, which swaps every default for a tiny one (CI runs the benchmarks that way).

use std::fmt::Debug;
use std::str::FromStr;

pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Self {
        Self(std::env::args().collect())
    }

    pub fn smoke(&self) -> bool {
        self.0.iter().any(|arg| arg == "--smoke")
    }

    /// The text after `flag`, if given.
    pub fn value(&self, flag: &str) -> Option<&str> {
        let at = self.0.iter().position(|arg| arg == flag)?;
        self.0.get(at + 1).map(String::as_str)
    }

    /// `flag`'s value, else `default`, or `smoke` under `--smoke`.
    pub fn get<T: FromStr>(&self, flag: &str, default: T, smoke: T) -> T
    where
        T::Err: Debug,
    {
        match self.value(flag) {
            Some(text) => text
                .parse()
                .unwrap_or_else(|error| panic!("{flag} {text}: {error:?}")),
            None if self.smoke() => smoke,
            None => default,
        }
    }

    /// `flag`'s comma-separated values, with defaults as for [`Args::get`].
    pub fn list<T: FromStr>(&self, flag: &str, default: Vec<T>, smoke: Vec<T>) -> Vec<T>
    where
        T::Err: Debug,
    {
        match self.value(flag) {
            Some(text) => text
                .split(',')
                .map(|item| {
                    item.parse()
                        .unwrap_or_else(|error| panic!("{flag} {item}: {error:?}"))
                })
                .collect(),
            None if self.smoke() => smoke,
            None => default,
        }
    }
}
