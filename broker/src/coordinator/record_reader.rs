//! Reading the records of the coordinators' internal topics (`__consumer_offsets`,
//! `__transaction_state`): Kafka's generated-message encoding, fixed or flexible (KIP-482).
//! Every read is bounds-checked and returns `None` on short or malformed input.

use bytes::{Buf, Bytes};

/// Cursor over a record key or value; `flexible` selects compact (KIP-482) encodings.
pub(crate) struct Reader {
    pub(crate) b: Bytes,
    pub(crate) flexible: bool,
}

impl Reader {
    pub(crate) fn i8(&mut self) -> Option<i8> {
        (self.b.remaining() >= 1).then(|| self.b.get_i8())
    }
    pub(crate) fn i16(&mut self) -> Option<i16> {
        (self.b.remaining() >= 2).then(|| self.b.get_i16())
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        (self.b.remaining() >= 4).then(|| self.b.get_i32())
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        (self.b.remaining() >= 8).then(|| self.b.get_i64())
    }
    pub(crate) fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            if !self.b.has_remaining() {
                return None;
            }
            let byte = self.b.get_u8();
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// Length of a string/bytes/array: -1 = null.
    pub(crate) fn len(&mut self, int32: bool) -> Option<i64> {
        if self.flexible {
            Some(self.uvarint()? as i64 - 1)
        } else if int32 {
            Some(i64::from(self.i32()?))
        } else {
            Some(i64::from(self.i16()?))
        }
    }
    pub(crate) fn take(&mut self, n: i64) -> Option<Bytes> {
        let n = usize::try_from(n).ok()?;
        (self.b.remaining() >= n).then(|| self.b.split_to(n))
    }
    pub(crate) fn nullable_str(&mut self) -> Option<Option<String>> {
        let n = self.len(false)?;
        if n < 0 {
            return Some(None);
        }
        String::from_utf8(self.take(n)?.to_vec()).ok().map(Some)
    }
    pub(crate) fn str(&mut self) -> Option<String> {
        self.nullable_str()?
    }
    pub(crate) fn bytes(&mut self) -> Option<Bytes> {
        let n = self.len(true)?;
        if n < 0 {
            return Some(Bytes::new());
        }
        self.take(n)
    }
    /// Array length; `Some(None)` = null. Each element takes at least one byte, so a count
    /// beyond the bytes left is garbage (`None`).
    pub(crate) fn array_len(&mut self) -> Option<Option<usize>> {
        let n = self.len(true)?;
        if n < 0 {
            return Some(None);
        }
        (n as usize <= self.b.remaining()).then_some(Some(n as usize))
    }
    /// Skip a tagged-field section (flexible versions only).
    pub(crate) fn tags(&mut self) -> Option<()> {
        if !self.flexible {
            return Some(());
        }
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let n = self.uvarint()?;
            self.take(n as i64)?;
        }
        Some(())
    }
}
