//! Ring files under `/dev/shm`: create (producer side) and attach (consumer side).
//!
//! The producer creates the file with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600 (or 0640 with
//! a group, for read-only observers), sizes it, writes the header and stores the magic last,
//! with `Release`: a file whose magic is still zero is "not ready", never half-read. The
//! consumer opens with `O_NOFOLLOW`, checks type, owner, mode and size with `fstat` on the
//! open descriptor (no check-then-open race), maps it and validates every header field
//! against its own limits. Each side takes an OFD byte-range lock on its index, so a second
//! producer or consumer on the same ring is refused instead of corrupting it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::layout::*;
use crate::ring::{Consumer, Keep, Producer, Region};
use crate::sigbus;
use crate::sync::{Ordering, Word};
use chronicle_metrics::RingFill;

/// Who may open a ring file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Mode 0600.
    #[default]
    Owner,
    /// Mode 0640 with this group: members may map the ring read-only (monitoring). The
    /// consumer writes its tail, so it runs as the owner.
    Group(u32),
}

/// What an attacher insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachOptions {
    /// The uid the file must belong to (default: our effective uid).
    pub owner_uid: u32,
    /// The data-area size the configuration expects, if it says.
    pub capacity: Option<usize>,
}

impl Default for AttachOptions {
    fn default() -> Self {
        Self {
            // SAFETY: geteuid cannot fail.
            owner_uid: unsafe { libc::geteuid() },
            capacity: None,
        }
    }
}

/// Why a ring file cannot be created or attached. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("{path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("{path}: already exists (rings are created with O_EXCL; remove a stale ring first)")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: no such ring file")]
    NotFound { path: PathBuf },
    #[error("{path}: in use by a live producer (another process holds its lock)")]
    InUse { path: PathBuf },
    #[error("{path}: is a symbolic link; ring files are opened with O_NOFOLLOW")]
    Symlink { path: PathBuf },
    #[error("{path}: not a regular file (mode {mode:#o})")]
    NotRegularFile { path: PathBuf, mode: u32 },
    #[error("{path}: owned by uid {uid}, expected uid {expected}")]
    WrongOwner {
        path: PathBuf,
        uid: u32,
        expected: u32,
    },
    #[error("{path}: mode {mode:#o}, expected 0600 or 0640")]
    WrongMode { path: PathBuf, mode: u32 },
    #[error("{path}: the producer has not finished creating the ring yet (retry)")]
    NotReady { path: PathBuf },
    #[error("{path}: size {size} bytes, expected {expected} (header {HEADER_LEN} + capacity)")]
    SizeMismatch {
        path: PathBuf,
        size: u64,
        expected: u64,
    },
    #[error("{path}: bad magic {found:#018x}: not a chronicle ring")]
    BadMagic { path: PathBuf, found: u64 },
    #[error("{path}: ring format version {found}, this build reads version {VERSION}")]
    BadVersion { path: PathBuf, found: u64 },
    #[error("{path}: header field `{field}` is {value}, expected {expected}")]
    BadHeader {
        path: PathBuf,
        field: &'static str,
        value: u64,
        expected: u64,
    },
    #[error("{path}: capacity {capacity} is not a power of two in {MIN_SHM_CAPACITY}..={MAX_SHM_CAPACITY}")]
    BadCapacity { path: PathBuf, capacity: u64 },
    #[error("{path}: capacity {capacity}, the configuration expects {expected}")]
    CapacityMismatch {
        path: PathBuf,
        capacity: u64,
        expected: u64,
    },
    #[error("{path}: indices out of range (head {head}, tail {tail}, capacity {capacity})")]
    BadIndices {
        path: PathBuf,
        head: u64,
        tail: u64,
        capacity: u64,
    },
    #[error("{path}: another {role} holds this ring")]
    Busy { path: PathBuf, role: &'static str },
    #[error("{path}: the file was truncated while being attached (SIGBUS caught)")]
    Truncated { path: PathBuf },
    #[error(
        "{path}: more than {} rings mapped in this process",
        sigbus::MAX_MAPPINGS
    )]
    TooManyRings { path: PathBuf },
}

/// A mapped ring file. Unregisters from the SIGBUS table and unmaps on drop; closing the
/// descriptor releases our lock.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
    slot: usize,
    _fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory accessed through atomics only.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: shared access goes through atomics only.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        sigbus::unregister(self.slot);
        // SAFETY: unmaps exactly what `map` mapped; no reference into it outlives `self`
        // (producers and consumers hold an `Arc<Mapping>`).
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

impl Mapping {
    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= HEADER_LEN,
            "header word offset"
        );
        // SAFETY: inside the header page of a live, page-aligned mapping.
        unsafe { &*(self.ptr.add(offset) as *const AtomicU64) }
    }

    fn region(&self, capacity: u64) -> Region {
        assert!(
            HEADER_LEN as u64 + capacity <= self.len as u64,
            "data area is mapped"
        );
        Region {
            head: self.word(OFF_HEAD),
            tail: self.word(OFF_TAIL),
            dropped: self.word(OFF_DROPPED),
            overrun_gaps: self.word(OFF_OVERRUN_GAPS),
            // SAFETY: the data area starts at HEADER_LEN and is `capacity` bytes long.
            data: unsafe { self.ptr.add(HEADER_LEN) } as *const Word,
            capacity,
            truncated: sigbus::flag(self.slot),
        }
    }
}

fn io_err(path: &Path, op: &'static str) -> RingError {
    RingError::Io {
        path: path.to_owned(),
        op,
        source: io::Error::last_os_error(),
    }
}

fn c_path(path: &Path) -> Result<CString, RingError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| RingError::Io {
        path: path.to_owned(),
        op: "path",
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// Takes an OFD write lock on the 8 bytes at `offset` (the index this side owns).
fn lock(fd: &OwnedFd, offset: usize, path: &Path, role: &'static str) -> Result<(), RingError> {
    // SAFETY: a zeroed flock is valid; fcntl with a valid descriptor and pointer.
    let rc = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = offset as libc::off_t;
        fl.l_len = 8;
        libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl)
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Err(RingError::Busy {
            path: path.to_owned(),
            role,
        }),
        _ => Err(RingError::Io {
            path: path.to_owned(),
            op: "fcntl(F_OFD_SETLK)",
            source: e,
        }),
    }
}

fn map(fd: OwnedFd, len: usize, path: &Path) -> Result<Mapping, RingError> {
    // SAFETY: a fresh shared mapping of a descriptor we own; MAP_POPULATE prefaults it so the
    // first records do not pay page faults.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io_err(path, "mmap"));
    }
    let slot = match sigbus::register(ptr as usize, len) {
        Ok(slot) => slot,
        Err(e) => {
            // SAFETY: unmapping what we just mapped.
            unsafe { libc::munmap(ptr, len) };
            return Err(match e {
                sigbus::RegisterError::TooMany => RingError::TooManyRings {
                    path: path.to_owned(),
                },
                sigbus::RegisterError::Sigaction(code) => RingError::Io {
                    path: path.to_owned(),
                    op: "sigaction(SIGBUS)",
                    source: io::Error::from_raw_os_error(code),
                },
            });
        }
    };
    Ok(Mapping {
        ptr: ptr as *mut u8,
        len,
        slot,
        _fd: fd,
    })
}

/// Creates the ring file at `path` (which must not exist) with a data area of `capacity`
/// bytes, a power of two in `MIN_SHM_CAPACITY..=MAX_SHM_CAPACITY`, and returns its producer.
pub fn create(path: &Path, capacity: usize, access: Access) -> Result<Producer, RingError> {
    if !capacity.is_power_of_two() || !(MIN_SHM_CAPACITY..=MAX_SHM_CAPACITY).contains(&capacity) {
        return Err(RingError::BadCapacity {
            path: path.to_owned(),
            capacity: capacity as u64,
        });
    }
    let cpath = c_path(path)?;
    // SAFETY: open with a valid C string.
    let raw = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EEXIST) => RingError::AlreadyExists {
                path: path.to_owned(),
            },
            _ => RingError::Io {
                path: path.to_owned(),
                op: "open(O_CREAT|O_EXCL|O_NOFOLLOW)",
                source: e,
            },
        });
    }
    // SAFETY: `raw` is a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let result = init(fd, path, capacity, access);
    if result.is_err() {
        // We created it: do not leave a half-made ring behind.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Removes the ring file at `path` if its producer is gone: true if there was one. The
/// producer's lock on its index (held as long as its descriptor lives, SIGKILL included) is
/// free only then. A ring whose producer lives is `InUse`, never removed; no file is
/// `Ok(false)`.
pub fn remove_stale(path: &Path) -> Result<bool, RingError> {
    let cpath = c_path(path)?;
    // SAFETY: open with a valid C string.
    let raw = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(false),
            Some(libc::ELOOP) => Err(RingError::Symlink {
                path: path.to_owned(),
            }),
            _ => Err(RingError::Io {
                path: path.to_owned(),
                op: "open",
                source: e,
            }),
        };
    }
    // SAFETY: `raw` is a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if let Err(e) = lock(&fd, OFF_HEAD, path, "producer") {
        return Err(match e {
            RingError::Busy { .. } => RingError::InUse {
                path: path.to_owned(),
            },
            e => e,
        });
    }
    std::fs::remove_file(path).map_err(|source| RingError::Io {
        path: path.to_owned(),
        op: "unlink",
        source,
    })?;
    Ok(true)
}

fn init(fd: OwnedFd, path: &Path, capacity: usize, access: Access) -> Result<Producer, RingError> {
    let raw = fd.as_raw_fd();
    // The umask may have narrowed the mode given to open: set it exactly.
    // SAFETY: libc calls on a descriptor we own.
    unsafe {
        let mode = match access {
            Access::Owner => 0o600,
            Access::Group(gid) => {
                if libc::fchown(raw, u32::MAX, gid) != 0 {
                    return Err(io_err(path, "fchown"));
                }
                0o640
            }
        };
        if libc::fchmod(raw, mode) != 0 {
            return Err(io_err(path, "fchmod"));
        }
        if libc::ftruncate(raw, (HEADER_LEN + capacity) as libc::off_t) != 0 {
            return Err(io_err(path, "ftruncate"));
        }
    }
    lock(&fd, OFF_HEAD, path, "producer")?;
    let mapping = map(fd, HEADER_LEN + capacity, path)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    for (offset, value) in [
        (OFF_VERSION, VERSION),
        (OFF_HEADER_LEN, HEADER_LEN as u64),
        (OFF_CAPACITY, capacity as u64),
        (OFF_ALIGN, ALIGN as u64),
        (OFF_CREATOR_PID, std::process::id() as u64),
        (OFF_CREATED_UNIX_NS, now),
        (OFF_HEAD, 0),
        (OFF_DROPPED, 0),
        (OFF_OVERRUN_GAPS, 0),
        (OFF_TAIL, 0),
    ] {
        mapping.word(offset).store(value, Ordering::Relaxed);
    }
    // Last, with Release: an attacher that sees the magic sees the whole header.
    mapping.word(OFF_MAGIC).store(MAGIC, Ordering::Release);
    let mapping = Arc::new(mapping);
    let region = mapping.region(capacity as u64);
    Ok(Producer::new(region, Keep::Shm(mapping)))
}

/// The fill and drop count of the ring file at `path`, read from its header with `pread`: no
/// mapping and no lock, so the metrics thread sees a ring whose consumer stopped (or died).
/// None if the file cannot be read or its indices are inconsistent.
pub fn read_fill(path: &Path) -> Option<RingFill> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).ok()?;
    let word = |offset: usize| -> Option<u64> {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, offset as u64).ok()?;
        Some(u64::from_le_bytes(b))
    };
    let capacity = word(OFF_CAPACITY)?;
    let (head, dropped, tail) = (word(OFF_HEAD)?, word(OFF_DROPPED)?, word(OFF_TAIL)?);
    if capacity == 0 || tail > head || head - tail > capacity {
        return None;
    }
    Some(RingFill {
        used: head - tail,
        capacity,
        dropped,
    })
}

/// Attaches the consumer of the ring at `path`, validating the file and its header. The
/// consumer resumes at the tail stored in the header (a restarted consumer continues).
pub fn attach(path: &Path, options: &AttachOptions) -> Result<Consumer, RingError> {
    let p = || path.to_owned();
    let cpath = c_path(path)?;
    // O_NONBLOCK: a FIFO planted at the path must not block us in open.
    // SAFETY: open with a valid C string.
    let raw = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => RingError::Symlink { path: p() },
            Some(libc::ENOENT) => RingError::NotFound { path: p() },
            _ => RingError::Io {
                path: p(),
                op: "open(O_NOFOLLOW)",
                source: e,
            },
        });
    }
    // SAFETY: `raw` is a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: fstat into a zeroed struct on a valid descriptor.
    let st = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(raw, &mut st) != 0 {
            return Err(io_err(path, "fstat"));
        }
        st
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(RingError::NotRegularFile {
            path: p(),
            mode: st.st_mode,
        });
    }
    if st.st_uid != options.owner_uid {
        return Err(RingError::WrongOwner {
            path: p(),
            uid: st.st_uid,
            expected: options.owner_uid,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode != 0o600 && mode != 0o640 {
        return Err(RingError::WrongMode { path: p(), mode });
    }
    let size = st.st_size as u64;
    if size == 0 {
        return Err(RingError::NotReady { path: p() });
    }
    let max_size = (HEADER_LEN + MAX_SHM_CAPACITY) as u64;
    if size < (HEADER_LEN + MIN_SHM_CAPACITY) as u64 || size > max_size {
        // The header cannot be trusted to say what size is right; name the smallest.
        return Err(RingError::SizeMismatch {
            path: p(),
            size,
            expected: (HEADER_LEN + MIN_SHM_CAPACITY) as u64,
        });
    }
    lock(&fd, OFF_TAIL, path, "consumer")?;
    let mapping = map(fd, size as usize, path)?;
    let truncated = sigbus::flag(mapping.slot);

    // Each field read once, then judged on our copy.
    let magic = mapping.word(OFF_MAGIC).load(Ordering::Acquire);
    let version = mapping.word(OFF_VERSION).load(Ordering::Relaxed);
    let header_len = mapping.word(OFF_HEADER_LEN).load(Ordering::Relaxed);
    let capacity = mapping.word(OFF_CAPACITY).load(Ordering::Relaxed);
    let align = mapping.word(OFF_ALIGN).load(Ordering::Relaxed);
    let tail = mapping.word(OFF_TAIL).load(Ordering::Relaxed);
    let head = mapping.word(OFF_HEAD).load(Ordering::Acquire);
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    if truncated.load(Ordering::Relaxed) {
        return Err(RingError::Truncated { path: p() });
    }
    if magic == 0 {
        return Err(RingError::NotReady { path: p() });
    }
    if magic != MAGIC {
        return Err(RingError::BadMagic {
            path: p(),
            found: magic,
        });
    }
    if version != VERSION {
        return Err(RingError::BadVersion {
            path: p(),
            found: version,
        });
    }
    for (field, value, expected) in [
        ("header_len", header_len, HEADER_LEN as u64),
        ("align", align, ALIGN as u64),
    ] {
        if value != expected {
            return Err(RingError::BadHeader {
                path: p(),
                field,
                value,
                expected,
            });
        }
    }
    if !capacity.is_power_of_two()
        || capacity < MIN_SHM_CAPACITY as u64
        || capacity > MAX_SHM_CAPACITY as u64
    {
        return Err(RingError::BadCapacity {
            path: p(),
            capacity,
        });
    }
    if let Some(expected) = options.capacity {
        if capacity != expected as u64 {
            return Err(RingError::CapacityMismatch {
                path: p(),
                capacity,
                expected: expected as u64,
            });
        }
    }
    if size != HEADER_LEN as u64 + capacity {
        return Err(RingError::SizeMismatch {
            path: p(),
            size,
            expected: HEADER_LEN as u64 + capacity,
        });
    }
    if head % 8 != 0 || tail % 8 != 0 || tail > head || head - tail > capacity {
        return Err(RingError::BadIndices {
            path: p(),
            head,
            tail,
            capacity,
        });
    }
    let mapping = Arc::new(mapping);
    let region = mapping.region(capacity);
    Ok(Consumer::new(region, Keep::Shm(mapping), tail))
}
