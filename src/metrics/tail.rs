//! Reading instances/<id>/logs/metrics.json and its rotated files
//! (metrics.json.1 is the newest of those). The latest samples are read
//! backwards from the end of the file in fixed chunks, so their cost does not
//! depend on the file's size; time ranges stream forward line by line. A line
//! still being written (no newline yet), a truncated file or a line that is
//! not JSON is skipped, never an error.

use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const FILE: &str = "metrics.json";
const CHUNK: usize = 64 * 1024;
/// A line longer than this is garbage, not a sample.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// metrics.json, metrics.json.1, metrics.json.2, ...: newest first (a gap
/// in the numbers, say after a file was deleted by hand, is skipped over).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix(FILE)?.strip_prefix('.')?;
            n.parse().ok()
        })
        .collect();
    rotated.sort_unstable();
    let current = dir.join(FILE);
    current
        .exists()
        .then_some(current)
        .into_iter()
        .chain(rotated.into_iter().map(|n| dir.join(format!("{FILE}.{n}"))))
        .collect()
}

/// The complete lines of a file from the last one backwards.
pub struct ReverseLines {
    file: File,
    /// Bytes before `pos` are not read yet.
    pos: u64,
    /// Read but not yet returned; the last line ends at buf.len().
    buf: Vec<u8>,
    started: bool,
}

impl ReverseLines {
    pub fn open(path: &Path) -> std::io::Result<ReverseLines> {
        let file = crate::safe_fs::open(path)?;
        let pos = file.metadata()?.len();
        Ok(ReverseLines {
            file,
            pos,
            buf: vec![],
            started: false,
        })
    }

    fn fill(&mut self) -> std::io::Result<bool> {
        if self.pos == 0 {
            return Ok(false);
        }
        let n = (CHUNK as u64).min(self.pos) as usize;
        self.pos -= n as u64;
        let mut chunk = vec![0; n];
        self.file.seek(SeekFrom::Start(self.pos))?;
        self.file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&self.buf);
        self.buf = chunk;
        Ok(true)
    }
}

impl Iterator for ReverseLines {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if !self.started {
            self.started = true;
            // Drop what follows the last newline: a line being written.
            loop {
                if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                    self.buf.truncate(i + 1);
                    break;
                }
                if self.buf.len() > MAX_LINE {
                    self.buf.clear();
                }
                match self.fill() {
                    Ok(true) => {}
                    _ => {
                        self.buf.clear();
                        return None;
                    }
                }
            }
        }
        loop {
            // buf ends with '\n' (or is empty); find the start of its last line.
            let body = self.buf.len().checked_sub(1)?;
            if let Some(i) = self.buf[..body].iter().rposition(|&b| b == b'\n') {
                let line = self.buf[i + 1..body].to_vec();
                self.buf.truncate(i + 1);
                return Some(line);
            }
            if self.pos == 0 {
                let line = self.buf[..body].to_vec();
                self.buf.clear();
                return Some(line);
            }
            if self.buf.len() > MAX_LINE {
                // A line this long is not a sample: skip to the line before it.
                self.buf.clear();
                while let Ok(true) = self.fill() {
                    if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                        self.buf.truncate(i + 1);
                        break;
                    }
                    self.buf.clear();
                }
                continue;
            }
            if !matches!(self.fill(), Ok(true)) {
                return None;
            }
        }
    }
}

/// A line as a sample: a JSON object with a string `ts`.
pub fn parse(line: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(line).ok()?;
    v.get("ts")?.as_str()?;
    v.is_object().then_some(v)
}

/// The last `n` samples across the rotated files, oldest first.
pub fn last(dir: &Path, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n.min(1024));
    'files: for f in files(dir) {
        let Ok(lines) = ReverseLines::open(&f) else {
            continue;
        };
        for line in lines {
            if out.len() >= n {
                break 'files;
            }
            if let Some(v) = parse(&line) {
                out.push(v);
            }
        }
    }
    out.reverse();
    out
}

/// The last `n` samples as typed samples, oldest first: for reading them
/// (the raw lines of `last` are what the API passes through).
pub fn last_samples(dir: &Path, n: usize) -> Vec<super::Sample> {
    last(dir, n)
        .into_iter()
        .filter_map(super::Sample::from_value)
        .collect()
}

/// The `ts` of a line, without parsing the rest (ranges scan many lines).
fn ts_of(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ts {
        ts: String,
    }
    serde_json::from_slice::<Ts>(line).ok().map(|t| t.ts)
}

/// Streams the samples with `since <= ts <= until` (timestamps in the
/// agent's own format, `2026-01-02T03:04:05.678Z`, which sort as text) to
/// `emit`, oldest first, one line at a time. Returns how many were sent.
pub fn range(
    dir: &Path,
    since: &str,
    until: &str,
    mut emit: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let mut sent = 0;
    let mut all = files(dir);
    all.reverse();
    for f in all {
        // Skip a whole file that ends before the range.
        let newest = ReverseLines::open(&f)
            .ok()
            .and_then(|mut l| l.find_map(|line| ts_of(&line)));
        match newest {
            Some(ts) if ts.as_str() >= since => {}
            _ => continue,
        }
        let Ok(file) = crate::safe_fs::open(&f) else {
            continue;
        };
        let mut reader = BufReader::with_capacity(CHUNK, file);
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break; // end of file, or a line being written
            }
            let body = &line[..line.len() - 1];
            let Some(ts) = ts_of(body) else { continue };
            if ts.as_str() > until {
                return Ok(sent);
            }
            if ts.as_str() >= since && parse(body).is_some() {
                emit(body)?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// A time as the agent writes it.
pub fn format_ts(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `since`/`until` from a query: RFC 3339 (any offset), or a duration ago
/// such as `15m` or `24h`.
pub fn parse_time(s: &str) -> Option<String> {
    let now = std::time::SystemTime::now();
    if let Ok(d) = humantime::parse_duration(s) {
        return now.checked_sub(d).map(format_ts);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Some(format_ts(t));
    }
    // An offset other than Z: shift it to UTC.
    let (base, sign, off) = match s.rfind(['+', '-']) {
        Some(i) if i > 10 => (&s[..i], &s[i..i + 1], &s[i + 1..]),
        _ => return None,
    };
    let (h, m) = off.split_once(':')?;
    let secs = (h.parse::<u64>().ok()?.checked_mul(3600)?)
        .checked_add(m.parse::<u64>().ok()?.checked_mul(60)?)?;
    let t = humantime::parse_rfc3339_weak(base).ok()?;
    let d = std::time::Duration::from_secs(secs);
    let utc = if sign == "+" {
        t.checked_sub(d)?
    } else {
        t.checked_add(d)?
    };
    Some(format_ts(utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir() -> crate::testing::TempDir {
        crate::testing::TempDir::new("tail")
    }

    fn sample(i: usize) -> String {
        format!(
            "{{\"ts\":\"2026-01-01T00:{:02}:{:02}.000Z\",\"v\":1,\"up\":true,\"n\":{i}}}\n",
            i / 60,
            i % 60
        )
    }

    fn ns(v: &[Value]) -> Vec<u64> {
        v.iter().map(|s| s["n"].as_u64().unwrap()).collect()
    }

    #[test]
    fn last_samples_skip_partial_and_garbage_lines() {
        let d = dir();
        let mut f = File::create(d.join(FILE)).unwrap();
        for i in 0..5 {
            f.write_all(sample(i).as_bytes()).unwrap();
        }
        f.write_all(b"not json at all\n{\"ts\": 5}\n\n").unwrap();
        f.write_all(sample(5).as_bytes()).unwrap();
        // A line being written: no newline yet.
        f.write_all(b"{\"ts\":\"2026-01-01T00:00:06.000Z\",\"v\":1,\"up")
            .unwrap();
        drop(f);
        assert_eq!(ns(&last(&d, 1)), vec![5]);
        assert_eq!(ns(&last(&d, 3)), vec![3, 4, 5]);
        assert_eq!(ns(&last(&d, 100)), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn rotated_files_read_as_one_sequence() {
        let d = dir();
        // metrics.json.2 (oldest) 0..3, .1 3..6, current 6..8
        for (name, r) in [
            ("metrics.json.2", 0..3),
            ("metrics.json.1", 3..6),
            ("metrics.json", 6..8),
        ] {
            let text: String = r.map(sample).collect();
            std::fs::write(d.join(name), text).unwrap();
        }
        assert_eq!(ns(&last(&d, 4)), vec![4, 5, 6, 7]);
        assert_eq!(ns(&last(&d, 50)), (0..8).collect::<Vec<_>>());
        // A gap in the numbering: .2 becomes .7; still one sequence.
        std::fs::rename(d.join("metrics.json.2"), d.join("metrics.json.7")).unwrap();
        std::fs::write(d.join("metrics.json.x"), b"ignored").unwrap();
        assert_eq!(ns(&last(&d, 50)), (0..8).collect::<Vec<_>>());
        let mut got = vec![];
        let n = range(
            &d,
            "2026-01-01T00:00:02.000Z",
            "2026-01-01T00:00:06.000Z",
            |l| {
                got.push(parse(l).unwrap()["n"].as_u64().unwrap());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((n, got), (5, vec![2, 3, 4, 5, 6]));
        // A truncated (empty) current file and a missing one are fine.
        std::fs::write(d.join(FILE), b"").unwrap();
        assert_eq!(ns(&last(&d, 1)), vec![5]);
        std::fs::remove_dir_all(&*d).unwrap();
        assert!(last(&d, 1).is_empty());
    }

    #[test]
    fn long_files_read_backwards_in_chunks() {
        let d = dir();
        let mut f = File::create(d.join(FILE)).unwrap();
        // Lines cross chunk boundaries; one huge garbage line in the middle.
        for i in 0..3000 {
            f.write_all(sample(i).as_bytes()).unwrap();
            if i == 1500 {
                f.write_all(&vec![b'x'; 200_000]).unwrap();
                f.write_all(b"\n").unwrap();
            }
        }
        drop(f);
        let all = last(&d, 10_000);
        assert_eq!(all.len(), 3000);
        assert_eq!(ns(&all[1499..1503]), vec![1499, 1500, 1501, 1502]);
    }

    #[test]
    fn times_parse_to_the_agents_format() {
        assert_eq!(
            parse_time("2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05.000Z"
        );
        assert_eq!(
            parse_time("2026-01-02T05:04:05+02:00").unwrap(),
            "2026-01-02T03:04:05.000Z"
        );
        assert_eq!(
            parse_time("2026-01-02T03:04:05.5Z").unwrap(),
            "2026-01-02T03:04:05.500Z"
        );
        assert!(parse_time("15m").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
