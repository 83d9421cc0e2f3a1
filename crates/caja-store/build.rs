//! Embeds `migrations/<engine>/<NNNN_name>/{up,down,verify}.sql` into the binary as a
//! sorted table, so the schema ships inside `caja` and a folder added is a migration added.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    // Read at run time, not `env!`: a build script binary may be reused from another checkout.
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("migrations");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::new();
    for (engine, konst) in [("sqlite", "SQLITE"), ("postgres", "POSTGRES")] {
        let dir = root.join(engine);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        writeln!(out, "pub static {konst}: &[Migration] = &[").unwrap();
        for path in entries {
            let folder = path.file_name().unwrap().to_string_lossy().into_owned();
            let (version, name) = folder
                .split_once('_')
                .unwrap_or_else(|| panic!("migration folder {folder} must be NNNN_name"));
            let version: i64 = version
                .parse()
                .unwrap_or_else(|_| panic!("migration folder {folder} must start with a number"));
            for file in ["up.sql", "down.sql", "verify.sql"] {
                let f = path.join(file);
                assert!(f.is_file(), "migration {folder} lacks {file}");
                println!("cargo:rerun-if-changed={}", f.display());
            }
            // `kind` holds `expand` or `contract`; without it a migration is a contract, the
            // safe default. Kept out of up.sql so declaring it never changes a checksum.
            let kind_file = path.join("kind");
            println!("cargo:rerun-if-changed={}", kind_file.display());
            let expand = match fs::read_to_string(&kind_file) {
                Ok(k) if k.trim() == "expand" => true,
                Ok(k) if k.trim() == "contract" => false,
                Ok(k) => panic!("migration {folder}: kind must be expand or contract, not {k:?}"),
                Err(_) => false,
            };
            let p = path.display();
            writeln!(
                out,
                "    Migration {{ version: {version}, name: {name:?}, up: include_str!(\"{p}/up.sql\"), down: include_str!(\"{p}/down.sql\"), verify: include_str!(\"{p}/verify.sql\"), expand: {expand} }},"
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs");
    fs::write(dest, out).unwrap();
}
