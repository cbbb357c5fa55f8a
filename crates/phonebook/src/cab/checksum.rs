//! The CFDATA checksum (MS-CAB §2.5, "CFDATA ... csum").

/// MS-CAB's checksum: the data XORed as little-endian 32-bit words, the
/// 1 to 3 trailing bytes folded in with the first byte highest. A block's
/// checksum is this over the compressed data seeded with 0, then over the
/// 4 bytes `cbData`,`cbUncomp` seeded with that.
pub fn cab_checksum(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        sum ^= u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let rest = chunks.remainder();
    let mut tail = 0u32;
    for &b in rest {
        tail = (tail << 8) | u32::from(b);
    }
    sum ^ tail
}

/// The checksum field of a CFDATA block.
pub fn block_checksum(compressed: &[u8], uncompressed_len: u16) -> u32 {
    let mut hdr = [0u8; 4];
    hdr[..2].copy_from_slice(&(compressed.len() as u16).to_le_bytes());
    hdr[2..].copy_from_slice(&uncompressed_len.to_le_bytes());
    cab_checksum(&hdr, cab_checksum(compressed, 0))
}
