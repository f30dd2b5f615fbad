//! Positioned reads and writes, link checks and directory syncs, for the store's own
//! files (`keys.slots` and the chunk files), on Unix and Windows.

use std::fs::File;
use std::path::Path;

/// Makes a newly created file's directory entry durable (best effort: not
/// every platform can open a directory).
pub(super) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(unix)]
pub(super) mod pos {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    pub(in crate::store) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        f.read_exact_at(buf, offset)
    }

    pub(in crate::store) fn write_all_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        f.write_all_at(buf, offset)
    }

    /// Whether the open file still has a name (it was not removed).
    pub(in crate::store) fn is_linked(f: &File) -> bool {
        use std::os::unix::fs::MetadataExt;
        f.metadata().is_ok_and(|m| m.nlink() > 0)
    }
}

#[cfg(windows)]
pub(super) mod pos {
    use std::fs::File;
    use std::io;
    use std::os::windows::fs::FileExt;

    pub(in crate::store) fn read_exact_at(
        f: &File,
        mut buf: &mut [u8],
        mut offset: u64,
    ) -> io::Result<()> {
        while !buf.is_empty() {
            match f.seek_read(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    pub(in crate::store) fn write_all_at(
        f: &File,
        mut buf: &[u8],
        mut offset: u64,
    ) -> io::Result<()> {
        while !buf.is_empty() {
            match f.seek_write(buf, offset)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Whether the open file still has a name; not known here, so no.
    pub(in crate::store) fn is_linked(_: &File) -> bool {
        false
    }
}
