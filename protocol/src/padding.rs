//! Size padding: Padmé (Nikitin et al., PETS 2019) with a floor.
//!
//! A padded length leaks O(log log L) bits of the content length, and costs at
//! most about 12% (less for larger clips).

use crate::limits::MIN_PADDED_LEN;

/// Padmé: rounds `len` up so that only its top `floor(log2(E)) + 1` bits
/// below the leading bit may be set, where `E = floor(log2(len))`.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    (len + mask) & !mask
}

/// The padded plaintext length of a clip whose content is `len` bytes:
/// `max(padme(len), MIN_PADDED_LEN)`.
pub fn padded_len(len: u64) -> u64 {
    padme(len).max(MIN_PADDED_LEN)
}

/// True if `len` is a length that [`padded_len`] can produce.
pub fn is_padded_len(len: u64) -> bool {
    len >= MIN_PADDED_LEN && padme(len) == len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1 << 20), 1 << 20);
        assert_eq!(padme((1 << 20) + 1), (1 << 20) + (1 << 15));
        assert_eq!(padded_len(1), MIN_PADDED_LEN);
    }

    proptest! {
        #[test]
        fn pads_up_idempotently_within_12_percent(len in 1u64..(1 << 40)) {
            let p = padded_len(len);
            prop_assert!(p >= len);
            prop_assert!(is_padded_len(p));
            prop_assert_eq!(padded_len(p), p);
            if len >= MIN_PADDED_LEN {
                prop_assert!((p - len) as f64 <= len as f64 * 0.12);
            }
        }
    }
}
