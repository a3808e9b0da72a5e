use crate::EncodeError;

/// An ASCII string stored NUL-padded in exactly `N` bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize>([u8; N]);

impl<const N: usize> FixedStr<N> {
    pub fn new(field: &'static str, text: &str) -> Result<Self, EncodeError> {
        if text.len() > N || !text.is_ascii() || text.as_bytes().contains(&0) {
            return Err(EncodeError::TextTooLong {
                field,
                text: text.to_owned(),
                max: N,
            });
        }
        let mut b = [0u8; N];
        b[..text.len()].copy_from_slice(text.as_bytes());
        Ok(Self(b))
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[..N]);
        Self(a)
    }

    pub fn bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The text up to the first NUL; bytes that are not ASCII (a hostile file) yield `None`.
    pub fn as_str(&self) -> Option<&str> {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(N);
        let s = &self.0[..end];
        if s.is_ascii() {
            std::str::from_utf8(s).ok()
        } else {
            None
        }
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self([0; N])
    }
}

impl<const N: usize> std::fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "{:?}", &self.0[..]),
        }
    }
}
