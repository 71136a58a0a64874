//! The Debian package: scripts/package stages and builds it with dpkg-deb; unpacked into a scratch root, its binary checks its config and explains a mail from the unpacked files alone; the binary is stripped and its debug information is in the -dbgsym package; Cargo.toml's cargo-deb metadata lists the same files.

use crate::harness::repo;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (dpkg-deb comes with dpkg)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the package from the test build of the binary; returns its path
/// and its debug symbols package's.
fn build(out: &Path) -> (PathBuf, PathBuf) {
    let o = run(Command::new(repo().join("scripts/package"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_ticketd"))
        .arg("--out")
        .arg(out));
    let said = String::from_utf8_lossy(&o.stdout);
    let paths: Vec<PathBuf> = said.lines().map(PathBuf::from).collect();
    assert_eq!(paths.len(), 2, "the package and its -dbgsym: {said}");
    (paths[0].clone(), paths[1].clone())
}

/// The build ID of an ELF file (`readelf -n`).
fn build_id(file: &Path) -> String {
    let o = run(Command::new("readelf").arg("-n").arg(file));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("{} has no build ID", file.display()))
        .trim()
        .to_string()
}

/// The section names of an ELF file (`readelf -S -W`).
fn sections(file: &Path) -> Vec<String> {
    let o = run(Command::new("readelf").args(["-S", "-W"]).arg(file));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(']')?;
            rest.split_whitespace().next().map(String::from)
        })
        .collect()
}

/// CRC-32 (IEEE), as `.gnu_debuglink` records the debug file's.
fn crc32(data: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|i| {
            (0..8).fold(i, |c, _| {
                if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// The package's binary is stripped; the -dbgsym package holds its debug
/// information under its build ID, the file its debuglink names.
#[test]
fn issue_21_the_packaged_binary_is_stripped_and_its_debug_file_matches() {
    let d = tempfile::tempdir().unwrap();
    let scratch = d.path();
    let (deb, dbgsym) = build(&scratch.join("out"));
    let root = scratch.join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    let dbgsym = dbgsym.as_path();
    let bin = root.join("usr/bin/ticketd");
    let names = sections(&bin);
    for gone in [".symtab", ".debug_info", ".debug_line", ".debug_str"] {
        assert!(!names.iter().any(|n| n == gone), "{gone} left in {names:?}");
    }
    let id = build_id(&bin);
    let debug = format!("/usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    let files = contents(dbgsym);
    assert_eq!(
        files,
        BTreeSet::from([debug.clone()]),
        "the -dbgsym package"
    );
    let droot = scratch.join("dbgsym");
    run(Command::new("dpkg").arg("-x").arg(dbgsym).arg(&droot));
    let debug = droot.join(debug.trim_start_matches('/'));
    assert_eq!(build_id(&debug), id, "the debug file is the binary's");
    let kept = sections(&debug);
    assert!(kept.iter().any(|n| n == ".debug_line"), "{kept:?}");
    // .gnu_debuglink: the file's name, NUL, padding to 4, its CRC-32.
    let link = scratch.join("debuglink");
    run(Command::new("objcopy")
        .arg(format!("--dump-section=.gnu_debuglink={}", link.display()))
        .arg(&bin)
        .arg(scratch.join("discard")));
    let link = std::fs::read(link).unwrap();
    let name_end = link.iter().position(|&b| b == 0).unwrap();
    assert_eq!(
        std::str::from_utf8(&link[..name_end]).unwrap(),
        debug.file_name().unwrap().to_str().unwrap()
    );
    let crc = u32::from_le_bytes(link[link.len() - 4..].try_into().unwrap());
    assert_eq!(crc, crc32(&std::fs::read(&debug).unwrap()), "debuglink CRC");
    let o = run(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(dbgsym)
        .args(["Package", "Depends", "Build-Ids"]));
    let fields = String::from_utf8_lossy(&o.stdout);
    assert!(fields.contains("Package: ticketd-dbgsym"), "{fields}");
    assert!(fields.contains(&format!("Build-Ids: {id}")), "{fields}");
}

/// The files (not directories) a .deb holds, as absolute paths.
fn contents(deb: &Path) -> BTreeSet<String> {
    let o = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

/// The files `[package.metadata.deb] assets` puts in a cargo-deb package.
fn cargo_deb_assets() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("[package.metadata.deb] assets");
    let mut out = BTreeSet::new();
    for a in assets {
        let (src, dest) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
        let sources: Vec<String> = match src.split_once('*') {
            Some((dir, ext)) => {
                let mut names: Vec<String> = std::fs::read_dir(repo().join(dir))
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(ext))
                    .collect();
                names.sort();
                names
            }
            None => vec![src.rsplit('/').next().unwrap().to_string()],
        };
        for name in sources {
            if dest.ends_with('/') {
                out.insert(format!("/{dest}{name}"));
            } else {
                out.insert(format!("/{dest}"));
            }
        }
    }
    out
}

fn mail() -> &'static str {
    "From: Ann <ann@customer.test>\r\nTo: support@ixsystems.example\r\nSubject: Pool degraded\r\nMessage-ID: <p1@customer.test>\r\nDate: Mon, 02 Mar 2026 09:00:00 -0800\r\n\r\nSerial A1-123456 reports a degraded pool.\r\n"
}

#[test]
fn the_package_installs_a_binary_that_runs_from_its_own_files() {
    let scratch = tempfile::tempdir().unwrap();
    let (deb, _) = build(&scratch.path().join("out"));
    let files = contents(&deb);
    for f in [
        "/usr/bin/ticketd",
        "/lib/systemd/system/ticketd.service",
        "/etc/ticketd/ticketd.toml",
        "/usr/share/ticketd/templates/en/ack_new.hbs",
        "/usr/share/ticketd/templates/ja/ack_new.hbs",
        "/usr/share/ticketd/vendors/ixsystems.toml",
        "/usr/share/ticketd/vendors/netex.toml",
        "/usr/share/ticketd/grafana/ticketd.json",
    ] {
        assert!(files.contains(f), "{f} is not in the package: {files:#?}");
    }
    assert_eq!(
        files,
        cargo_deb_assets(),
        "scripts/package and [package.metadata.deb] assets differ"
    );

    let root = scratch.path().join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    // The shipped example config, as is, with the credentials systemd would pass.
    let creds = scratch.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    for c in ["imap-support", "imap-rma", "imap-24x7", "smtp-password"] {
        std::fs::write(creds.join(c), "secret\n").unwrap();
    }
    std::fs::write(
        creds.join("reply-token"),
        "a reply token key of 32 bytes..\n",
    )
    .unwrap();
    let bin = root.join("usr/bin/ticketd");
    let config = root.join("etc/ticketd/ticketd.toml");
    let cwd = scratch.path().join("elsewhere");
    std::fs::create_dir(&cwd).unwrap();
    let ticketd = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args)
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CREDENTIALS_DIRECTORY", &creds);
        c
    };
    let out = run(&mut ticketd(&["check-config", config.to_str().unwrap()]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("ok (3 mailboxes, pack ixsystems"), "{said}");

    let eml = scratch.path().join("m.eml");
    std::fs::write(&eml, mail()).unwrap();
    let explain = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["explain", eml.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = run(&mut ticketd(&args));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let v = explain(&["--config", config.to_str().unwrap()]);
    assert_eq!(v["policy"]["pack"], "ixsystems");
    assert!(v["replies"][0]["body"].as_str().unwrap().contains("RMA"));
    // Without a config: the shipped packs by name.
    let v = explain(&["--pack", "qnap"]);
    assert_eq!(v["policy"]["pack"], "qnap");

    // A pack in /etc/ticketd/vendors overrides the shipped one of its name.
    let shipped =
        std::fs::read_to_string(root.join("usr/share/ticketd/vendors/ixsystems.toml")).unwrap();
    let marker = "also serves as the RMA number";
    assert!(shipped.contains(marker));
    std::fs::create_dir(root.join("etc/ticketd/vendors")).unwrap();
    std::fs::write(
        root.join("etc/ticketd/vendors/ixsystems.toml"),
        shipped.replace(marker, "is the RMA number (local wording)"),
    )
    .unwrap();
    let v = explain(&["--config", config.to_str().unwrap()]);
    let notices = v["policy"]["notices"].to_string();
    assert!(notices.contains("local wording"), "{notices}");
}
