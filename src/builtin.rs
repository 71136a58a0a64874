//! The shipped vendor packs and reply templates compiled into the binary: the last place `layout` looks, so a binary built from source runs without installing anything.

include!(concat!(env!("OUT_DIR"), "/builtin_data.rs"));

/// The text of the shipped pack `name` (`config/vendors/NAME.toml`).
pub fn pack(name: &str) -> Option<&'static str> {
    PACKS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names of the shipped packs.
pub fn pack_names() -> impl Iterator<Item = &'static str> {
    PACKS.iter().map(|(n, _)| *n)
}

/// The shipped templates of `lang` (`templates/LANG/NAME.hbs`): (name, text).
pub fn templates(lang: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    TEMPLATES
        .iter()
        .filter(move |(l, _, _)| *l == lang)
        .map(|(_, n, t)| (*n, *t))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn issue_21_every_shipped_file_is_built_in_as_it_is_on_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut packs = 0;
        for e in std::fs::read_dir(root.join("config/vendors")).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_str().unwrap();
            assert_eq!(
                super::pack(name),
                Some(std::fs::read_to_string(&p).unwrap().as_str()),
                "{name}"
            );
            packs += 1;
        }
        assert_eq!(super::pack_names().count(), packs);
        for lang in ["en", "es", "ja"] {
            let dir = root.join("templates").join(lang);
            let on_disk = std::fs::read_dir(&dir).unwrap().count();
            assert_eq!(super::templates(lang).count(), on_disk, "{lang}");
            for (name, text) in super::templates(lang) {
                let file = dir.join(format!("{name}.hbs"));
                assert_eq!(
                    std::fs::read_to_string(&file).unwrap(),
                    text,
                    "{}",
                    file.display()
                );
            }
        }
    }
}
