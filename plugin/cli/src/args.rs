//! A small argument parser: `--flag value`, `--flag=value`, repeated flags, positionals.

use std::collections::VecDeque;

use crate::CliError;

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    flags: Vec<(String, String)>,
    switches: Vec<String>,
    /// Arguments that are not flags.
    pub positional: Vec<String>,
}

impl Args {
    /// Parses `raw`; `switches` lists the flags that take no value.
    pub fn parse(
        raw: impl IntoIterator<Item = String>,
        switches: &[&str],
    ) -> Result<Args, CliError> {
        let mut raw: VecDeque<String> = raw.into_iter().collect();
        let mut args = Args::default();
        while let Some(a) = raw.pop_front() {
            if a == "-" || !a.starts_with("--") {
                args.positional.push(a);
                continue;
            }
            let name = a.trim_start_matches("--");
            if let Some((k, v)) = name.split_once('=') {
                args.flags.push((k.to_string(), v.to_string()));
            } else if switches.contains(&name) {
                args.switches.push(name.to_string());
            } else {
                let v = raw
                    .pop_front()
                    .ok_or_else(|| CliError::Usage(format!("--{name} needs a value")))?;
                args.flags.push((name.to_string(), v));
            }
        }
        Ok(args)
    }

    /// The last value of `--name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `--name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// `--name`, required.
    pub fn require(&self, name: &str) -> Result<&str, CliError> {
        self.get(name)
            .ok_or_else(|| CliError::Usage(format!("--{name} is required")))
    }

    /// Refuses flags not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), CliError> {
        match self
            .flags
            .iter()
            .map(|(k, _)| k)
            .chain(&self.switches)
            .find(|k| !known.contains(&k.as_str()))
        {
            Some(k) => Err(CliError::Usage(format!("unknown option --{k}"))),
            None => Ok(()),
        }
    }
}
