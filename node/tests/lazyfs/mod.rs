//! A FUSE file system that loses what was not synced, for the power-cut
//! campaign (RELIABILITY.md §2), after LazyFS: it passes every call through
//! to a backing directory, except that file data written is held in memory,
//! page by page, until the file is `fsync`ed or `fdatasync`ed.
//! [`LazyFs::cut`] drops every unsynced page and length: what a power cut
//! does to a page cache.
//!
//! Metadata operations (create, mkdir, unlink, rename, link) reach the backing
//! directory at once, so they survive a cut as if every directory were
//! synced; a cut therefore loses file data, never names. Data is served
//! with `direct_io`, so the kernel caches none of it and a process started
//! after a cut reads what survived.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

const PAGE: u64 = 4096;
/// Attributes and entries are never cached by the kernel.
const TTL: Duration = Duration::ZERO;

/// Unsynced state of one file: its pages written since the last sync, and
/// its length as the writer sees it.
struct Dirty {
    pages: BTreeMap<u64, Box<[u8]>>,
    len: u64,
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Stats {
    /// Power cuts so far.
    pub cuts: u64,
    /// Pages dropped by them.
    pub pages_dropped: u64,
    /// Files whose unsynced length change a cut undid.
    pub lengths_dropped: u64,
    /// Syncs of a file with unsynced data.
    pub syncs: u64,
}

struct State {
    backing: PathBuf,
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    dirty: HashMap<u64, Dirty>,
    stats: Stats,
}

impl State {
    fn real(&self, ino: u64) -> Result<PathBuf, Errno> {
        let rel = self.paths.get(&ino).ok_or(Errno::ENOENT)?;
        Ok(self.backing.join(rel))
    }

    fn intern(&mut self, rel: PathBuf) -> u64 {
        if let Some(&ino) = self.inos.get(&rel) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.paths.insert(ino, rel.clone());
        self.inos.insert(rel, ino);
        ino
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.paths.get(&parent).ok_or(Errno::ENOENT)?.join(name))
    }

    fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
            self.dirty.remove(&ino);
        }
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(self.real(ino)?)?;
        let kind = if meta.is_dir() {
            FileType::Directory
        } else if meta.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        };
        let size = self.dirty.get(&ino).map_or(meta.len(), |d| d.len);
        let time = |s: i64| UNIX_EPOCH + Duration::from_secs(s.max(0) as u64);
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime()),
            mtime: time(meta.mtime()),
            ctime: time(meta.ctime()),
            crtime: time(meta.ctime()),
            kind,
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: 0,
            blksize: PAGE as u32,
            flags: 0,
        })
    }

    /// The file's unsynced state, started from the backing file's length.
    fn dirty(&mut self, ino: u64) -> Result<&mut Dirty, Errno> {
        if !self.dirty.contains_key(&ino) {
            let len = fs::metadata(self.real(ino)?)?.len();
            self.dirty.insert(
                ino,
                Dirty {
                    pages: BTreeMap::new(),
                    len,
                },
            );
        }
        Ok(self.dirty.get_mut(&ino).expect("inserted"))
    }

    /// Page `n` of the backing file as it is on disk (zeros past its end).
    fn backing_page(&self, ino: u64, n: u64) -> Result<Box<[u8]>, Errno> {
        let mut page = vec![0u8; PAGE as usize].into_boxed_slice();
        let file = File::open(self.real(ino)?)?;
        let len = file.metadata()?.len();
        let start = n * PAGE;
        if start < len {
            let end = (start + PAGE).min(len);
            file.read_exact_at(&mut page[..(end - start) as usize], start)?;
        }
        Ok(page)
    }

    fn read(&mut self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let len = match self.dirty.get(&ino) {
            Some(d) => d.len,
            None => fs::metadata(self.real(ino)?)?.len(),
        };
        let end = (offset + u64::from(size)).min(len);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        while pos < end {
            let n = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let take = ((PAGE - pos % PAGE).min(end - pos)) as usize;
            match self.dirty.get(&ino).and_then(|d| d.pages.get(&n)) {
                Some(page) => out.extend_from_slice(&page[in_page..in_page + take]),
                None => {
                    let page = self.backing_page(ino, n)?;
                    out.extend_from_slice(&page[in_page..in_page + take]);
                }
            }
            pos += take as u64;
        }
        Ok(out)
    }

    fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let n = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let take = rest.len().min(PAGE as usize - in_page);
            if !self.dirty(ino)?.pages.contains_key(&n) {
                let len = self.dirty(ino)?.len;
                let mut page = self.backing_page(ino, n)?;
                // Bytes past the writer's length are zeros, whatever the
                // backing file still holds there.
                if len < (n + 1) * PAGE {
                    let keep = len.saturating_sub(n * PAGE) as usize;
                    page[keep..].fill(0);
                }
                self.dirty(ino)?.pages.insert(n, page);
            }
            let d = self.dirty(ino)?;
            d.pages.get_mut(&n).expect("loaded")[in_page..in_page + take]
                .copy_from_slice(&rest[..take]);
            pos += take as u64;
            d.len = d.len.max(pos);
            rest = &rest[take..];
        }
        Ok(())
    }

    fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        let d = self.dirty(ino)?;
        d.len = len;
        let first_gone = len.div_ceil(PAGE);
        d.pages.retain(|&n, _| n < first_gone);
        if let Some(page) = d.pages.get_mut(&(len / PAGE))
            && !len.is_multiple_of(PAGE)
        {
            page[(len % PAGE) as usize..].fill(0);
        }
        Ok(())
    }

    /// Writes the file's unsynced pages and length to the backing file and
    /// syncs it.
    fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        let Some(d) = self.dirty.remove(&ino) else {
            return Ok(());
        };
        let file = OpenOptions::new().write(true).open(self.real(ino)?)?;
        // Cut first, so that a page past the new end is never written back.
        file.set_len(d.len)?;
        for (n, page) in &d.pages {
            let start = n * PAGE;
            if start >= d.len {
                continue;
            }
            let take = (d.len - start).min(PAGE) as usize;
            file.write_all_at(&page[..take], start)?;
        }
        file.sync_all()?;
        self.stats.syncs += 1;
        Ok(())
    }
}

/// The file system; clones share it.
#[derive(Clone)]
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every write not synced since: the power cut.
    pub fn cut(&self) -> Stats {
        let mut s = self.lock();
        let dirty = std::mem::take(&mut s.dirty);
        s.stats.cuts += 1;
        for d in dirty.values() {
            s.stats.pages_dropped += d.pages.len() as u64;
            s.stats.lengths_dropped += 1;
        }
        s.stats
    }

    pub fn dump(&self) -> Vec<(u64, PathBuf)> {
        let mut v: Vec<_> = self
            .lock()
            .paths
            .iter()
            .map(|(i, p)| (*i, p.clone()))
            .collect();
        v.sort();
        v
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats
    }
}

/// A mounted [`LazyFs`]; unmounted when dropped.
pub struct Mounted {
    pub fs: LazyFs,
    pub path: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

/// Mounts a [`LazyFs`] over `backing` at `mountpoint`; `Err` says why a
/// FUSE mount is not possible here (no `/dev/fuse`, not root).
pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<Mounted> {
    let mut paths = HashMap::new();
    let mut inos = HashMap::new();
    paths.insert(INodeNo::ROOT.0, PathBuf::new());
    inos.insert(PathBuf::new(), INodeNo::ROOT.0);
    let fs = LazyFs {
        state: Arc::new(Mutex::new(State {
            backing: backing.to_path_buf(),
            paths,
            inos,
            next_ino: INodeNo::ROOT.0 + 1,
            dirty: HashMap::new(),
            stats: Stats::default(),
        })),
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("mayfly-lazyfs".into()),
        MountOption::DefaultPermissions,
    ];
    let session = fuser::spawn_mount(Handler(fs.clone()), mountpoint, &config)?;
    Ok(Mounted {
        fs,
        path: mountpoint.to_path_buf(),
        session: Some(session),
    })
}

struct Handler(LazyFs);

fn done(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Handler {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut s = self.0.lock();
        let r = (|| {
            let rel = s.child(parent.0, name)?;
            fs::symlink_metadata(s.backing.join(&rel))?;
            let ino = s.intern(rel);
            s.attr(ino)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.lock().attr(ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.0.lock();
        let r = (|| {
            if let Some(mode) = mode {
                fs::set_permissions(s.real(ino.0)?, fs::Permissions::from_mode(mode & 0o7777))?;
            }
            if let Some(size) = size {
                s.set_len(ino.0, size)?;
            }
            s.attr(ino.0)
        })();
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let mut s = self.0.lock();
        let r = (|| {
            let rel = s.child(parent.0, name)?;
            let real = s.backing.join(&rel);
            fs::create_dir(&real)?;
            fs::set_permissions(&real, fs::Permissions::from_mode(mode & 0o7777))?;
            let ino = s.intern(rel);
            s.attr(ino)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.0.lock();
        let r = (|| {
            let rel = s.child(parent.0, name)?;
            fs::remove_file(s.backing.join(&rel))?;
            s.forget_path(&rel);
            Ok(())
        })();
        done(reply, r);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut s = self.0.lock();
        let r = (|| {
            let rel = s.child(parent.0, name)?;
            fs::remove_dir(s.backing.join(&rel))?;
            s.forget_path(&rel);
            Ok(())
        })();
        done(reply, r);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut s = self.0.lock();
        let r = (|| {
            let from = s.child(parent.0, name)?;
            let to = s.child(newparent.0, newname)?;
            fs::rename(s.backing.join(&from), s.backing.join(&to))?;
            s.forget_path(&to);
            // Every known path at or under `from` moves under `to`.
            let moved: Vec<(PathBuf, u64)> = s
                .inos
                .iter()
                .filter(|(p, _)| p.starts_with(&from))
                .map(|(p, &i)| (p.clone(), i))
                .collect();
            for (old, ino) in moved {
                let rest = old.strip_prefix(&from).expect("under from");
                // (`join("")` would add a trailing slash.)
                let new = if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                };
                s.inos.remove(&old);
                s.inos.insert(new.clone(), ino);
                s.paths.insert(ino, new);
            }
            Ok(())
        })();
        done(reply, r);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut s = self.0.lock();
        let r = (|| {
            // The new name is a file of its own here: a model that the
            // node's use (link a synced file into place) does not strain.
            s.sync(ino.0)?;
            let rel = s.child(newparent.0, newname)?;
            fs::hard_link(s.real(ino.0)?, s.backing.join(&rel))?;
            let new = s.intern(rel);
            s.attr(new)
        })();
        match r {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.0.lock().real(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = self.0.lock();
        let r = (|| {
            let rel = s.child(parent.0, name)?;
            let real = s.backing.join(&rel);
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&real)?;
            fs::set_permissions(&real, fs::Permissions::from_mode(mode & 0o7777))?;
            let ino = s.intern(rel);
            s.attr(ino)
        })();
        match r {
            Ok(a) => reply.created(
                &TTL,
                &a,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.lock().read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.0.lock().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.0.lock().sync(ino.0);
        done(reply, r);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut s = self.0.lock();
        let r = (|| {
            let rel = s.paths.get(&ino.0).ok_or(Errno::ENOENT)?.clone();
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            let mut names: Vec<_> =
                fs::read_dir(s.backing.join(&rel))?.collect::<Result<Vec<_>, _>>()?;
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let kind = if e.file_type()?.is_dir() {
                    FileType::Directory
                } else {
                    FileType::RegularFile
                };
                let child = s.intern(rel.join(e.file_name()));
                entries.push((child, kind, e.file_name()));
            }
            Ok::<_, Errno>(entries)
        })();
        match r {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), i as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Names reach the backing directory at once (see the module docs).
        reply.ok();
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// What a quick self-test of a mount found: `Err` with the reason if FUSE
/// cannot be used here.
pub fn try_mount(root: &Path) -> io::Result<Mounted> {
    let backing = root.join("backing");
    let mountpoint = root.join("mnt");
    fs::create_dir_all(&backing)?;
    fs::create_dir_all(&mountpoint)?;
    let m = mount(&backing, &mountpoint)?;
    // The mount answers, and a cut loses an unsynced write.
    let probe = mountpoint.join(".probe");
    fs::write(&probe, b"synced")?;
    File::open(&probe)?.sync_all()?;
    fs::write(&probe, b"lost!!")?;
    m.fs.cut();
    let back = fs::read(&probe)?;
    if back != b"synced" {
        return Err(io::Error::other(format!(
            "the lazy file system kept an unsynced write: {:?}",
            String::from_utf8_lossy(&back)
        )));
    }
    fs::remove_file(&probe)?;
    Ok(m)
}

/// What a crash campaign does to its processes at each kill.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// `kill -9`: the process dies, the kernel keeps what it wrote.
    Crash,
    /// `kill -9`, then every write not synced is lost.
    PowerCut,
}

/// Where a campaign's processes write: `dir`, and `disk`, the same files as
/// they stand on disk (what a power cut leaves); `mounted` is the lazy file
/// system of a power-cut campaign.
pub struct Disk {
    pub mounted: Option<Mounted>,
    pub dir: PathBuf,
    pub disk: PathBuf,
}

impl Disk {
    /// Directory `name` under `root`: a plain one for [`Fault::Crash`], one
    /// on a lazy file system for [`Fault::PowerCut`]. `None`, with a
    /// SKIPPED line naming `campaign`, where FUSE cannot be mounted.
    pub fn new(fault: Fault, root: &Path, name: &str, campaign: &str) -> Option<Disk> {
        let disk = match fault {
            Fault::Crash => Disk {
                mounted: None,
                dir: root.join(name),
                disk: root.join(name),
            },
            Fault::PowerCut => match try_mount(root) {
                Ok(m) => Disk {
                    dir: m.path.join(name),
                    disk: root.join("backing").join(name),
                    mounted: Some(m),
                },
                Err(e) => {
                    eprintln!(
                        "SKIPPED: the {campaign} campaign needs a FUSE mount (root and /dev/fuse), and here: {e}"
                    );
                    return None;
                }
            },
        };
        fs::create_dir_all(&disk.dir).expect("the campaign's directory");
        Some(disk)
    }

    /// The power cut, if this is a power-cut campaign.
    pub fn cut(&self) {
        if let Some(m) = &self.mounted {
            m.fs.cut();
        }
    }

    /// The lazy file system's figures, for a campaign's summary line.
    pub fn figures(&self) -> String {
        self.mounted
            .as_ref()
            .map(|m| format!("; {:?}", m.fs.stats()))
            .unwrap_or_default()
    }
}

/// A whole number from the environment variable `name`, else `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}
