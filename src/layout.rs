//! Where the shipped templates and vendor packs are found: the config's `[daemon]` settings, else beside the config, else the installed data directory (`/usr/share/ticketd`), else the copies built into the binary.

use std::path::{Path, PathBuf};

/// Where a pack or the templates were found: a file or directory, or the
/// copy built into the binary (`crate::builtin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::BuiltIn => f.write_str(BUILT_IN),
        }
    }
}

/// How the built-in copies are named in messages and in `explain --json`.
pub const BUILT_IN: &str = "built in";

/// Where the Debian package installs the templates and packs.
pub const INSTALLED_DATA: &str = "/usr/share/ticketd";

/// The shipped data directory: `$TICKETD_DATA_DIR` when set, else
/// `share/ticketd` under the prefix the running binary lives in
/// (`/usr/bin/ticketd` → `/usr/share/ticketd`; a package unpacked elsewhere
/// finds its own files), else [`INSTALLED_DATA`].
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TICKETD_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let prefix = exe.parent()?.parent()?;
            let d = prefix.join("share/ticketd");
            d.is_dir().then_some(d)
        })
        .unwrap_or_else(|| PathBuf::from(INSTALLED_DATA))
}

/// The places templates and packs are looked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    /// Template directories: the first that exists is used whole.
    pub templates: Vec<PathBuf>,
    /// Pack directories: a pack `NAME` is the first `DIR/NAME.toml` found, so
    /// `/etc/ticketd/vendors/NAME.toml` overrides the shipped one.
    pub packs: Vec<PathBuf>,
    /// Whether the templates built into the binary come last (not when the
    /// config names its own directory: then that is the only place).
    pub built_in_templates: bool,
    /// Whether the packs built into the binary come last (not when the config
    /// names its own directory).
    pub built_in_packs: bool,
}

impl SearchPath {
    /// For a config in `config_dir` naming (or not) its own directories, with
    /// the shipped data in `data`.
    pub fn new(
        config_dir: Option<&Path>,
        templates: Option<PathBuf>,
        packs: Option<PathBuf>,
        data: &Path,
    ) -> SearchPath {
        let beside = |name: &str| config_dir.map(|d| d.join(name));
        SearchPath {
            built_in_templates: templates.is_none(),
            built_in_packs: packs.is_none(),
            templates: match templates {
                Some(t) => vec![t],
                None => beside("templates")
                    .into_iter()
                    .chain([data.join("templates")])
                    .collect(),
            },
            packs: match packs {
                Some(p) => vec![p],
                None => beside("vendors")
                    .into_iter()
                    .chain([data.join("vendors")])
                    .collect(),
            },
        }
    }

    /// The templates to load: the first directory that exists, else the
    /// built-in ones; `None` when neither (the config's own directory is missing).
    pub fn templates_source(&self) -> Option<Source> {
        match self.templates.iter().find(|p| p.is_dir()) {
            Some(d) => Some(Source::File(d.clone())),
            None => self.built_in_templates.then_some(Source::BuiltIn),
        }
    }

    /// Where pack `name` is: the first `DIR/NAME.toml` found, else the
    /// built-in pack of that name; `None` when there is none.
    pub fn pack_source(&self, name: &str) -> Option<Source> {
        let file = self
            .packs
            .iter()
            .map(|d| d.join(format!("{name}.toml")))
            .find(|p| p.is_file());
        match file {
            Some(f) => Some(Source::File(f)),
            None => (self.built_in_packs && crate::builtin::pack(name).is_some())
                .then_some(Source::BuiltIn),
        }
    }

    /// The pack directories, for a message: "a or b" (or the built-in packs).
    pub fn packs_described(&self) -> String {
        describe(&self.packs, self.built_in_packs.then_some("packs"))
    }

    /// The template directories, for a message: "a or b" (or the built-in templates).
    pub fn templates_described(&self) -> String {
        describe(
            &self.templates,
            self.built_in_templates.then_some("templates"),
        )
    }
}

fn describe(list: &[PathBuf], built_in: Option<&str>) -> String {
    let mut places: Vec<String> = list.iter().map(|p| p.display().to_string()).collect();
    if let Some(what) = built_in {
        places.push(format!("the {what} built into the binary"));
    }
    places.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_beside_the_config_overrides_the_shipped_one() {
        let d = tempfile::tempdir().unwrap();
        let (etc, data) = (d.path().join("etc"), d.path().join("share"));
        for dir in [
            etc.join("vendors"),
            data.join("vendors"),
            data.join("templates"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(data.join("vendors/a.toml"), "").unwrap();
        std::fs::write(data.join("vendors/b.toml"), "").unwrap();
        std::fs::write(etc.join("vendors/b.toml"), "").unwrap();
        let s = SearchPath::new(Some(&etc), None, None, &data);
        let file = |p: PathBuf| Some(Source::File(p));
        assert_eq!(s.pack_source("a"), file(data.join("vendors/a.toml")));
        assert_eq!(s.pack_source("b"), file(etc.join("vendors/b.toml")));
        assert_eq!(s.pack_source("c"), None);
        assert_eq!(s.templates_source(), file(data.join("templates")));
        std::fs::create_dir_all(etc.join("templates")).unwrap();
        assert_eq!(s.templates_source(), file(etc.join("templates")));
    }

    #[test]
    fn issue_21_the_built_in_packs_and_templates_come_last() {
        let d = tempfile::tempdir().unwrap();
        let (etc, data) = (d.path().join("etc"), d.path().join("share"));
        std::fs::create_dir_all(etc.join("vendors")).unwrap();
        std::fs::write(etc.join("vendors/netex.toml"), "").unwrap();
        let s = SearchPath::new(Some(&etc), None, None, &data);
        assert_eq!(s.templates_source(), Some(Source::BuiltIn));
        assert_eq!(s.pack_source("qnap"), Some(Source::BuiltIn));
        assert_eq!(
            s.pack_source("netex"),
            Some(Source::File(etc.join("vendors/netex.toml")))
        );
        assert_eq!(s.pack_source("nosuchpack"), None);
        assert!(
            s.packs_described()
                .ends_with("or the packs built into the binary")
        );
        assert_eq!(Source::BuiltIn.to_string(), "built in");
    }

    #[test]
    fn configured_directories_are_the_only_place_looked() {
        let d = tempfile::tempdir().unwrap();
        let mine = d.path().join("mine");
        let s = SearchPath::new(
            Some(d.path()),
            Some(mine.join("t")),
            Some(mine.clone()),
            Path::new("/nonexistent"),
        );
        assert_eq!(s.packs, vec![mine.clone()]);
        assert_eq!(s.pack_source("qnap"), None);
        assert_eq!(s.templates_source(), None);
        std::fs::create_dir_all(mine.join("t")).unwrap();
        std::fs::write(mine.join("qnap.toml"), "").unwrap();
        assert_eq!(
            s.pack_source("qnap"),
            Some(Source::File(mine.join("qnap.toml")))
        );
        assert_eq!(s.templates_source(), Some(Source::File(mine.join("t"))));
    }
}
