//! Replacing a state file so that a crash leaves either the old or the new contents.
//!
//! The agent's journal, its rollback points and the simulated backend's package database all
//! go through [`replace_file`]: the contents are written to a temporary file beside the target
//! and flushed to disk, the temporary file is renamed over the target, and on Unix the
//! directory is flushed too (a rename is durable only once its directory is).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `contents` atomically and durably (see the module documentation).
/// On error the target is untouched; a leftover temporary file (`<name>.new`) is overwritten
/// by the next call.
pub fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_path(path);
    let mut file = File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    sync_directory(path)
}

/// Flushes the directory of `path`, which makes a rename in it durable on Unix.
#[cfg(unix)]
fn sync_directory(path: &Path) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

/// Windows cannot open a directory as a file; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// `<name>.new` beside `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".new");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("patchwave-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[test]
    fn the_file_is_replaced_and_no_temporary_is_left() {
        let dir = scratch("replace");
        let path = dir.join("points.json");
        replace_file(&path, b"old").expect("first write");
        replace_file(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![OsString::from("points.json")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_leaves_the_old_contents() {
        let dir = scratch("fail");
        let path = dir.join("journal.jsonl");
        replace_file(&path, b"kept").expect("first write");
        // The temporary file cannot be created where a directory of that name stands.
        std::fs::create_dir(temporary_path(&path)).expect("blocking directory");
        assert!(replace_file(&path, b"lost").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"kept");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_temporary_file_sits_beside_the_target() {
        assert_eq!(
            temporary_path(Path::new("/var/lib/patchwave/journal.jsonl")),
            PathBuf::from("/var/lib/patchwave/journal.jsonl.new")
        );
        assert_eq!(
            temporary_path(Path::new("db.json")),
            PathBuf::from("db.json.new")
        );
    }
}
