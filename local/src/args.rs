//! The command line: positional words, `--flag value` options (repeatable) and
//! `--switch`es, with nothing left unread.

use std::collections::HashMap;

/// Options that take no value.
const SWITCHES: &[&str] = &["json", "all", "help", "force"];

/// A parsed command line.
#[derive(Debug, Default)]
pub struct Args {
    positional: Vec<String>,
    options: HashMap<String, Vec<String>>,
}

impl Args {
    /// Splits `words` into positional words and options.
    pub fn parse(words: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut args = Args::default();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            match word.strip_prefix("--") {
                Some(name) if SWITCHES.contains(&name) => {
                    args.options.entry(name.to_string()).or_default();
                }
                Some(name) if !name.is_empty() => {
                    let value = words
                        .next()
                        .ok_or_else(|| format!("--{name} needs a value"))?;
                    args.options
                        .entry(name.to_string())
                        .or_default()
                        .push(value);
                }
                _ if word == "-h" => {
                    args.options.entry("help".into()).or_default();
                }
                _ => args.positional.push(word),
            }
        }
        Ok(args)
    }

    /// The `index`th positional word.
    pub fn positional(&self, index: usize) -> Option<&str> {
        self.positional.get(index).map(String::as_str)
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    /// The last value of `--name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of `--name`, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.options.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `--name` as a number within `min..=max`, or `default`.
    pub fn number(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, String> {
        match self.value(name) {
            None => Ok(default),
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "--{name} is {text:?}; expected a whole number from {min} to {max}"
                )),
            },
        }
    }

    /// Refuses options outside `allowed` and positional words past `positional`.
    pub fn only(&self, allowed: &[&str], positional: usize) -> Result<(), String> {
        if let Some(unknown) = self.options.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "--{unknown} is not an option of this command (it takes {})",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed
                        .iter()
                        .map(|a| format!("--{a}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
        if let Some(extra) = self.positional.get(positional) {
            return Err(format!("unexpected argument {extra:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Args, String> {
        Args::parse(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn options_switches_and_positional_words() {
        let args = parse(&[
            "jobs", "create", "--name", "a", "--header", "A: 1", "--header", "B: 2", "--json",
        ])
        .unwrap();
        assert_eq!(args.positional(0), Some("jobs"));
        assert_eq!(args.positional(1), Some("create"));
        assert_eq!(args.value("name"), Some("a"));
        assert_eq!(args.values("header"), ["A: 1", "B: 2"]);
        assert!(args.flag("json"));
        assert!(args.only(&["name", "header", "json"], 2).is_ok());
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse(&["--count"]).unwrap_err(), "--count needs a value");
        let args = parse(&["schedule", "* * * * * *", "--count", "x"]).unwrap();
        assert!(args
            .number("count", 10, 1, 1000)
            .unwrap_err()
            .contains("--count is \"x\""));
        let args = parse(&["history", "id", "--colour", "red"]).unwrap();
        assert!(args
            .only(&["limit"], 2)
            .unwrap_err()
            .starts_with("--colour is not an option"));
        let args = parse(&["jobs", "get", "a", "b"]).unwrap();
        assert_eq!(args.only(&[], 3).unwrap_err(), "unexpected argument \"b\"");
    }
}
