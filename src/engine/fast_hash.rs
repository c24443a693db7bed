//! FxHash, the engine's hasher for names from its own inputs.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

/// A small, fast, non-cryptographic hasher (FxHash) for the hot per-asset lookups: the keys
/// are names from our own inputs, so hash flooding is not a concern and SipHash's cost is.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let word = tail
                .iter()
                .rev()
                .fold(0_u64, |acc, byte| (acc << 8) | u64::from(*byte));
            self.write_u64(word);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;
pub(crate) type FastSet<K> = HashSet<K, std::hash::BuildHasherDefault<FxHasher>>;

/// FxHash of one string, for the cheap "are these all different?" checks.
pub(crate) fn hash_str(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}
