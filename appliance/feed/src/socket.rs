//! The feed's UDP socket: a receive buffer sized for bursts, batched reads (`recvmmsg`) into
//! preallocated slots, and the kernel's count of the datagrams it dropped (`SO_RXQ_OVFL`)
//! with each datagram read.
//!
//! The receive buffer is what carries a feed through the milliseconds its thread is off the
//! core (a VM tick, an interrupt): at 200 k datagrams/s the kernel's default 208 KiB holds a
//! millisecond or two, and every datagram past it is dropped by the kernel, not by us. The
//! drop count the kernel attaches to each datagram is cumulative for the socket (the value of
//! its drop counter when the datagram was queued), so the difference between two datagrams
//! read one after the other is exactly what the kernel dropped between them.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use crate::feed::MAX_DATAGRAM_LEN;

/// The receive buffer asked for by default: at 200 k datagrams/s of a few hundred bytes,
/// about a quarter of a second of traffic.
pub const DEFAULT_RECV_BUFFER_BYTES: usize = 64 << 20;
/// The largest receive buffer the kernel takes (`SO_RCVBUFFORCE` caps at `INT_MAX / 2`).
pub const MAX_RECV_BUFFER_BYTES: usize = (i32::MAX / 2) as usize;
/// Datagrams one `recvmmsg` reads at most.
pub const RECV_BATCH: usize = 64;
/// One slot per datagram: a byte more than the largest UDP payload, so none is ever cut.
const SLOT_LEN: usize = MAX_DATAGRAM_LEN + 1;
/// Control bytes per datagram: room for the `SO_RXQ_OVFL` message (24 bytes) and more.
const CONTROL_WORDS: usize = 8;
/// Where the kernel's limit on unprivileged receive buffers is read (and set).
pub const RMEM_MAX_PATH: &str = "/proc/sys/net/core/rmem_max";

/// What the socket's receive buffer became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveBuffer {
    /// Bytes asked for (0: the kernel's default was kept).
    pub requested: usize,
    /// `SO_RCVBUF` read back: what the kernel granted. Linux reports twice the value set (the
    /// other half pays for its own bookkeeping), so a grant at or above the request is whole.
    pub granted: usize,
    /// Set with `SO_RCVBUFFORCE` (the process has `CAP_NET_ADMIN`), which `rmem_max` does not
    /// cap; otherwise `SO_RCVBUF`, capped at `net.core.rmem_max`.
    pub forced: bool,
}

impl ReceiveBuffer {
    /// The warning to log at start when the kernel granted less than asked (None if not).
    pub fn warning(&self) -> Option<String> {
        if self.granted >= self.requested {
            return None;
        }
        let rmem_max = std::fs::read_to_string(RMEM_MAX_PATH)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        Some(format!(
            "the UDP receive buffer is {} bytes, less than the {} asked for \
             ([input] recv_buffer_bytes): net.core.rmem_max is {rmem_max} and the process lacks \
             CAP_NET_ADMIN; a burst longer than the buffer holds is dropped by the kernel. Raise \
             it: sysctl -w net.core.rmem_max={} (chronicle tune checks it)",
            self.granted, self.requested, self.requested
        ))
    }
}

fn setsockopt_int(socket: &UdpSocket, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid descriptor, a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(socket: &UdpSocket, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor, a pointer to a live c_int and its size.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The receive buffer the kernel reports for `socket` now (`SO_RCVBUF`).
pub fn receive_buffer_bytes(socket: &UdpSocket) -> io::Result<usize> {
    Ok(getsockopt_int(socket, libc::SO_RCVBUF)?.max(0) as usize)
}

/// `SO_MEMINFO` (`asm-generic/socket.h`; the libc crate has its indices, not the option).
const SO_MEMINFO: libc::c_int = 55;

/// The socket's cumulative kernel drop count now (`SO_MEMINFO`, `SK_MEMINFO_DROPS`): what
/// the kernel dropped after the last datagram read, before another one shows it.
pub fn kernel_drops_now(socket: &UdpSocket) -> io::Result<u32> {
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid descriptor and a buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info[libc::SK_MEMINFO_DROPS as usize])
}

/// Prepares a feed socket: asks for a receive buffer of `bytes` (0 keeps the kernel's
/// default; at most [`MAX_RECV_BUFFER_BYTES`]) with `SO_RCVBUFFORCE`, falling back to
/// `SO_RCVBUF` without `CAP_NET_ADMIN`, reads back the grant, and turns on the kernel's drop
/// count (`SO_RXQ_OVFL`) for every datagram read.
pub fn prepare(socket: &UdpSocket, bytes: usize) -> io::Result<ReceiveBuffer> {
    if bytes > MAX_RECV_BUFFER_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a receive buffer of {bytes} bytes: the limit is {MAX_RECV_BUFFER_BYTES}"),
        ));
    }
    setsockopt_int(socket, libc::SO_RXQ_OVFL, 1)?;
    let mut forced = false;
    if bytes > 0 {
        match setsockopt_int(socket, libc::SO_RCVBUFFORCE, bytes as libc::c_int) {
            Ok(()) => forced = true,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                setsockopt_int(socket, libc::SO_RCVBUF, bytes as libc::c_int)?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(ReceiveBuffer {
        requested: bytes,
        granted: receive_buffer_bytes(socket)?,
        forced,
    })
}

/// One datagram of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub datagram: &'a [u8],
    /// Datagrams the kernel dropped on this socket since it was created, as of when this one
    /// was queued (`SO_RXQ_OVFL`; wraps at 2³²).
    pub kernel_drops: u32,
}

/// Reads datagrams `RECV_BATCH` at a time with `recvmmsg` into slots allocated once. The
/// message headers point into the receiver's own heap buffers, which never move or grow.
pub struct BatchReceiver {
    slots: Box<[u8]>,
    iovecs: Box<[libc::iovec]>,
    /// `u64` words keep every control buffer aligned for `cmsghdr`.
    control: Box<[u64]>,
    headers: Box<[libc::mmsghdr]>,
    len: usize,
}

// SAFETY: the raw pointers in `iovecs` and `headers` point only into the receiver's own boxed
// buffers, which move with it; nothing else aliases them.
unsafe impl Send for BatchReceiver {}

impl Default for BatchReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchReceiver {
    pub fn new() -> Self {
        let mut slots = vec![0u8; RECV_BATCH * SLOT_LEN].into_boxed_slice();
        let mut control = vec![0u64; RECV_BATCH * CONTROL_WORDS].into_boxed_slice();
        let mut iovecs: Box<[libc::iovec]> = (0..RECV_BATCH)
            .map(|i| libc::iovec {
                // SAFETY: slot i lies inside `slots`.
                iov_base: unsafe { slots.as_mut_ptr().add(i * SLOT_LEN) }.cast(),
                iov_len: SLOT_LEN,
            })
            .collect();
        let headers = (0..RECV_BATCH)
            .map(|i| {
                // SAFETY: an all-zero msghdr is valid (no name, no iovecs, no control).
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                // SAFETY: iovec i and control block i lie inside their buffers.
                h.msg_iov = unsafe { iovecs.as_mut_ptr().add(i) };
                h.msg_iovlen = 1;
                // SAFETY: control block i lies inside `control` (i < batch).
                h.msg_control = unsafe { control.as_mut_ptr().add(i * CONTROL_WORDS) }.cast();
                h.msg_controllen = CONTROL_WORDS * 8;
                libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                }
            })
            .collect();
        Self {
            slots,
            iovecs,
            control,
            headers,
            len: 0,
        }
    }

    /// Reads what is queued, up to [`RECV_BATCH`] datagrams: waits for the first one as the
    /// socket's mode says (blocking, with its read timeout, or not at all), never for the
    /// rest. Returns how many were read; `WouldBlock`/`TimedOut` when none came.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.len = 0;
        for h in self.headers.iter_mut() {
            // The kernel shrinks these to what it wrote: give each its whole room back.
            h.msg_hdr.msg_controllen = CONTROL_WORDS * 8;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `headers` holds RECV_BATCH valid mmsghdr whose buffers live in `self`.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = n as usize;
        debug_assert!(self.len <= RECV_BATCH);
        Ok(self.len)
    }

    /// Datagrams the last `recv` read.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Datagram `i` (< `len()`) of the last `recv`.
    pub fn get(&self, i: usize) -> Received<'_> {
        assert!(i < self.len, "datagram {i} of a batch of {}", self.len);
        let m = &self.headers[i];
        // A slot is larger than any UDP payload, so the kernel never cuts one.
        debug_assert_eq!(m.msg_hdr.msg_flags & libc::MSG_TRUNC, 0);
        let len = (m.msg_len as usize).min(SLOT_LEN);
        let mut kernel_drops = 0;
        // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control messages
        // into this header's control block; the CMSG macros stay inside it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&m.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                    kernel_drops = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>());
                }
                c = libc::CMSG_NXTHDR(&m.msg_hdr, c);
            }
        }
        Received {
            datagram: &self.slots[i * SLOT_LEN..i * SLOT_LEN + len],
            kernel_drops,
        }
    }
}

impl std::fmt::Debug for BatchReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchReceiver")
            .field("len", &self.len)
            .field("capacity", &self.iovecs.len())
            .field("control_words", &self.control.len())
            .finish()
    }
}
