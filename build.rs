//! Build script: lists the shipped vendor packs (`config/vendors/*.toml`) and templates (`templates/<lang>/*.hbs`) for `src/builtin.rs`, which compiles them into the binary.

use std::fmt::Write;
use std::path::Path;

fn files(dir: &Path, ext: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .map(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).expect("UTF-8 name");
            (stem.to_string(), p.display().to_string())
        })
        .collect();
    out.sort();
    out
}

fn main() {
    // Relative relocations packed (DT_RELR): the loader reads a few KiB at
    // start instead of 1.7 MB of them, which stayed resident in an idle daemon.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (vendors, templates) = (root.join("config/vendors"), root.join("templates"));
    println!("cargo::rerun-if-changed={}", vendors.display());
    println!("cargo::rerun-if-changed={}", templates.display());
    let mut code = String::from(
        "/// The shipped packs: (name, text).\npub static PACKS: &[(&str, &str)] = &[\n",
    );
    for (name, path) in files(&vendors, "toml") {
        writeln!(code, "    ({name:?}, include_str!({path:?})),").unwrap();
    }
    code.push_str("];\n\n/// The shipped templates: (language, name, text).\npub static TEMPLATES: &[(&str, &str, &str)] = &[\n");
    let mut langs: Vec<String> = std::fs::read_dir(&templates)
        .expect("templates/")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect();
    langs.sort();
    for lang in langs {
        for (name, path) in files(&templates.join(&lang), "hbs") {
            writeln!(code, "    ({lang:?}, {name:?}, include_str!({path:?})),").unwrap();
        }
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_data.rs");
    std::fs::write(out, code).expect("write builtin_data.rs");
}
