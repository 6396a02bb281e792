//! Reading the operator's files (plugins, policies, secrets) without being
//! fooled by what sits at their paths: a device, a FIFO, a file that grows.

use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::sandbox::policy::format_size;

/// Reads the regular file at `path`, at most `cap` bytes; `what` names the
/// kind of file and its cap in errors. `None` if there is no such file.
///
/// A symlink is followed only to a regular file. The type is checked before
/// opening (so a device is never opened) and again on the opened file,
/// opened non-blocking (so a FIFO swapped in meanwhile cannot block), and the
/// read stops at the cap whatever the size said.
pub fn read_regular(path: &Path, cap: u64, what: &str) -> Result<Option<Vec<u8>>> {
    open_regular(path, cap, what)?
        .map(|mut file| file.read())
        .transpose()
}

/// A regular file opened as [`read_regular`] opens it, not yet read: its
/// metadata is the opened file's own.
pub struct Regular<'a> {
    path: &'a Path,
    file: std::fs::File,
    /// The opened file's metadata.
    pub meta: std::fs::Metadata,
    cap: u64,
    what: &'a str,
}

/// Opens the regular file at `path` for [`Regular::read`], with the checks of
/// [`read_regular`]. `None` if there is no such file.
pub fn open_regular<'a>(path: &'a Path, cap: u64, what: &'a str) -> Result<Option<Regular<'a>>> {
    match path.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        Ok(_) => {}
    }
    let check = |meta: &std::fs::Metadata| -> Result<()> {
        if !meta.is_file() {
            bail!(
                "{}: not a regular file ({}); {what} files must be regular files",
                path.display(),
                kind(&meta.file_type())
            );
        }
        if meta.len() > cap {
            bail!(
                "{}: {} is larger than the {} cap for {what} files",
                path.display(),
                format_size(meta.len()),
                format_size(cap)
            );
        }
        Ok(())
    };
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read (a dangling symlink?)", path.display()))?;
    check(&meta)?;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    check(&meta)?;
    Ok(Some(Regular {
        path,
        file,
        meta,
        cap,
        what,
    }))
}

impl Regular<'_> {
    /// The opened file.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Its bytes, at most its cap.
    pub fn read(&mut self) -> Result<Vec<u8>> {
        let (path, cap, what) = (self.path, self.cap, self.what);
        let mut bytes = Vec::with_capacity(self.meta.len() as usize);
        (&self.file)
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if bytes.len() as u64 > cap {
            bail!(
                "{}: grew past the {} cap for {what} files while being read",
                path.display(),
                format_size(cap)
            );
        }
        Ok(bytes)
    }
}

fn kind(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}
