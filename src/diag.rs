//! Diagnostics: problems with file and line, collected into one report, and TOML loading that reports them; shared by the config and the vendor packs.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One problem found in a configuration or pack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Every problem found, so that an admin can fix them all in one pass.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Collects problems for one file, turning byte offsets into line numbers.
pub(crate) struct Report<'a> {
    file: &'a Path,
    text: &'a str,
    pub problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Report {
            file,
            text,
            problems: Vec::new(),
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn at(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line_of(offset);
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line,
            message: message.into(),
        });
    }

    pub fn spanned<T>(&mut self, s: &Spanned<T>, message: impl Into<String>) {
        self.at(s.span().start, message);
    }

    /// A TOML syntax or shape error from serde, with the line it points at.
    pub fn toml_error(&mut self, e: &toml::de::Error) {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let msg = e.message().trim().to_string();
        self.at(offset, msg);
    }
}

/// Parses `text` as `T`, reporting a TOML error with its line.
pub(crate) fn parse_toml<T: for<'de> Deserialize<'de>>(report: &mut Report<'_>) -> Option<T> {
    match toml::from_str::<T>(report.text) {
        Ok(v) => Some(v),
        Err(e) => {
            report.toml_error(&e);
            None
        }
    }
}
