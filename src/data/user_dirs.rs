//! Where tweetlab keeps its own files (workspaces, models) when the system names no user data
//! or cache folder (no home directory): a folder in the temporary directory that belongs to
//! this user alone, never one shared path that another account could create first.

use std::path::{Path, PathBuf};

/// `found` (the user's data or cache folder, if the system has one) joined with `tweetlab`,
/// else this user's private folder in the temporary directory.
pub fn tweetlab_dir(found: Option<PathBuf>) -> PathBuf {
    match found {
        Some(dir) => dir.join("tweetlab"),
        None => private_dir_in(&std::env::temp_dir()),
    }
}

/// `base/tweetlab-UID`, created 0700 when missing and used only if this user owns it and no
/// one else can enter it; otherwise a fresh private folder of its own.
pub fn private_dir_in(base: &Path) -> PathBuf {
    let uid = current_uid();
    let dir = base.join(format!("tweetlab-{uid}"));
    if is_private(&dir, uid) || (create_private(&dir) && is_private(&dir, uid)) {
        return dir;
    }
    let prefix = format!("tweetlab-{uid}-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    builder.tempdir_in(base).map(|d| d.keep()).unwrap_or(dir)
}

#[cfg(unix)]
fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or_else(|| {
            use std::os::unix::fs::MetadataExt;
            // A file this process just made is owned by its user.
            tempfile::tempfile()
                .and_then(|f| f.metadata())
                .map_or(u32::MAX, |m| m.uid())
        })
}

#[cfg(not(unix))]
fn current_uid() -> u32 {
    0
}

#[cfg(unix)]
fn is_private(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn is_private(dir: &Path, _uid: u32) -> bool {
    dir.is_dir()
}

#[cfg(unix)]
fn create_private(dir: &Path) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir).is_ok()
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> bool {
    std::fs::create_dir(dir).is_ok()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn without_a_home_the_folder_is_this_users_alone() {
        let base = tempfile::tempdir().unwrap();
        let dir = private_dir_in(base.path());
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.uid(), current_uid());
        assert_eq!(meta.permissions().mode() & 0o077, 0, "{dir:?}");
        assert_eq!(
            private_dir_in(base.path()),
            dir,
            "the same folder next time"
        );
        assert_ne!(tweetlab_dir(None), std::env::temp_dir().join("tweetlab"));
    }

    #[test]
    fn a_folder_someone_else_made_first_is_not_used() {
        let base = tempfile::tempdir().unwrap();
        let squatted = base.path().join(format!("tweetlab-{}", current_uid()));
        std::fs::create_dir(&squatted).unwrap();
        std::fs::set_permissions(&squatted, std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = private_dir_in(base.path());
        assert_ne!(dir, squatted);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o077,
            0
        );
    }
}
