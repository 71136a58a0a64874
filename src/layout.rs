//! Where the shipped templates and vendor packs are found: the config's `[daemon]` settings, else beside the config, else the installed data directory (`/usr/share/ticketd`).

use std::path::{Path, PathBuf};

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

    /// The template directory to load: the first that exists (else the last
    /// place looked, so the error names it).
    pub fn templates_dir(&self) -> PathBuf {
        first_or_last(&self.templates, |p| p.is_dir())
    }

    /// The file of pack `name` (the first found, else where it was last looked for).
    pub fn pack_file(&self, name: &str) -> PathBuf {
        let files: Vec<PathBuf> = self
            .packs
            .iter()
            .map(|d| d.join(format!("{name}.toml")))
            .collect();
        first_or_last(&files, |p| p.is_file())
    }

    /// The pack directories, for a message: "a or b".
    pub fn packs_described(&self) -> String {
        describe(&self.packs)
    }

    /// The template directories, for a message: "a or b".
    pub fn templates_described(&self) -> String {
        describe(&self.templates)
    }
}

fn first_or_last(list: &[PathBuf], ok: impl Fn(&Path) -> bool) -> PathBuf {
    list.iter()
        .find(|p| ok(p))
        .or(list.last())
        .cloned()
        .unwrap_or_default()
}

fn describe(list: &[PathBuf]) -> String {
    list.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
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
        assert_eq!(s.pack_file("a"), data.join("vendors/a.toml"));
        assert_eq!(s.pack_file("b"), etc.join("vendors/b.toml"));
        assert_eq!(s.pack_file("c"), data.join("vendors/c.toml"));
        assert_eq!(s.templates_dir(), data.join("templates"));
        std::fs::create_dir_all(etc.join("templates")).unwrap();
        assert_eq!(s.templates_dir(), etc.join("templates"));
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
        assert_eq!(s.pack_file("x"), mine.join("x.toml"));
        assert_eq!(s.templates_dir(), mine.join("t"));
    }
}
