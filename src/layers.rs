//! The layering rule, checked: faces (api) -> ops -> services (engine, db,
//! metrics, registry, provision, oplog) -> base (settings, home, validate,
//! error, secrets, safe_fs, top_dir, backups). A module may use its own layer and the ones
//! below, never one above. Also: no function of the library is much longer
//! than a screen. Both are read from the source text by unit tests.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    const LAYERS: &[(&str, u8)] = &[
        ("settings", 0),
        ("home", 0),
        ("validate", 0),
        ("error", 0),
        ("secrets", 0),
        ("safe_fs", 0),
        ("backups", 0),
        ("subnet", 0),
        ("top_dir", 0),
        ("certs", 0),
        ("testing", 0),
        ("layers", 0),
        ("engine", 1),
        ("db", 1),
        ("metrics", 1),
        ("registry", 1),
        ("provision", 1),
        ("oplog", 1),
        ("ops", 2),
        ("api", 3),
    ];

    fn rank(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
    }

    fn sources() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut out = vec![];
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out
    }

    /// The library module a file belongs to (None for the binary's files).
    fn module_of(path: &Path) -> Option<String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let rel = path.strip_prefix(&src).ok()?;
        let first = rel.components().next()?.as_os_str().to_string_lossy();
        let name = first.trim_end_matches(".rs").to_string();
        rank(&name).map(|_| name)
    }

    /// The code of a file without its unit tests.
    fn code(path: &Path) -> String {
        // A module's unit tests in a file of their own (`X_tests.rs`).
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            return String::new();
        }
        let text = std::fs::read_to_string(path).unwrap();
        match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    }

    #[test]
    fn no_module_uses_a_layer_above_it() {
        let mut wrong = vec![];
        for path in sources() {
            let Some(module) = module_of(&path) else {
                continue;
            };
            let own = rank(&module).unwrap();
            let text = code(&path);
            for (i, _) in text.match_indices("crate::") {
                let used: String = text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(r) = rank(&used) {
                    if r > own {
                        wrong.push(format!("{} uses crate::{used}", path.display()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "upward imports: {wrong:#?}");
    }

    /// The faces (the API and the CLI) ask `ops`: they reach no engine,
    /// no provisioning and no pool themselves.
    #[test]
    fn the_faces_reach_no_engine_provisioning_or_pool() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![];
        for dir in ["api", "bin"] {
            let mut found = sources()
                .into_iter()
                .filter(|p| p.starts_with(root.join(dir)))
                .collect::<Vec<_>>();
            assert!(!found.is_empty(), "no files under src/{dir}");
            files.append(&mut found);
        }
        let mut wrong = vec![];
        for path in files {
            let text = code(&path);
            for below in ["engine", "provision", "db::pool"] {
                for krate in ["crate", "dbaas"] {
                    if text.contains(&format!("{krate}::{below}")) {
                        wrong.push(format!("{} uses {krate}::{below}", path.display()));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// Small modules: no file of code much over 500 lines, none of ops/ or
    /// of the CLI's commands much over 400 (unit tests live beside, in
    /// `X_tests.rs`).
    #[test]
    fn no_file_is_much_longer_than_its_room() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut long = vec![];
        for path in sources() {
            let lines = code(&path).lines().count();
            let tight = path.starts_with(root.join("ops"))
                || path.starts_with(root.join("bin/dbaasctl/commands"));
            let most = if tight { 430 } else { 520 };
            if lines > most {
                long.push(format!("{} is {lines} lines (most {most})", path.display()));
            }
        }
        assert!(long.is_empty(), "{long:#?}");
    }

    #[test]
    fn no_function_is_much_longer_than_a_screen() {
        const MOST: usize = 85;
        let mut long = vec![];
        for path in sources() {
            let text = code(&path);
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let t = l.trim_start();
                let indent = l.len() - t.len();
                let is_fn = [
                    "fn ",
                    "pub fn ",
                    "async fn ",
                    "pub async fn ",
                    "pub(crate) fn ",
                    "pub(super) fn ",
                    "pub(super) async fn ",
                    "const fn ",
                ]
                .iter()
                .any(|p| t.starts_with(p));
                if !is_fn || t.ends_with(';') {
                    continue;
                }
                let close = format!("{}}}", " ".repeat(indent));
                let len = lines[i..]
                    .iter()
                    .position(|x| *x == close)
                    .map_or(0, |n| n + 1);
                if len > MOST {
                    long.push(format!("{}:{} is {len} lines", path.display(), i + 1));
                }
            }
        }
        assert!(long.is_empty(), "functions over {MOST} lines: {long:#?}");
    }
}
