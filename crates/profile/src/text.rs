//! Text encodings of profile files: the Windows "ANSI" code page, UTF-8 and UTF-16.
//!
//! CMAK writes `.cms`/`.cmp`/`.inf` in the system ANSI code page; `GetPrivateProfileString`
//! also reads UTF-16LE files that start with a byte-order mark, and hand-edited files are
//! often UTF-8. We decode all of them and write a file back in the encoding it came in,
//! so a round trip never changes a byte the user did not ask to change.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// The encoding a profile file was read in, kept to write it back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark (also plain ASCII).
    Utf8,
    /// UTF-8 with the EF BB BF byte-order mark.
    Utf8Bom,
    /// UTF-16 little endian with the FF FE byte-order mark (what Notepad calls "Unicode").
    Utf16LeBom,
    /// UTF-16 big endian with the FE FF byte-order mark.
    Utf16BeBom,
    /// Windows-1252, the ANSI code page of Western-European Windows.
    Windows1252,
}

/// A file could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// UTF-16 input with an odd number of bytes or unpaired surrogates.
    #[error("malformed {0:?} text")]
    Malformed(TextEncoding),
    /// A character that the file's encoding cannot represent (e.g. CJK in Windows-1252).
    #[error("the character {0:?} cannot be written in {1:?}")]
    Unrepresentable(char, TextEncoding),
}

/// Decodes bytes, recognising byte-order marks first, then UTF-8, then Windows-1252.
pub fn decode(bytes: &[u8]) -> Result<(String, TextEncoding), TextError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return strict(UTF_8, rest, TextEncoding::Utf8Bom);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return strict(UTF_16LE, rest, TextEncoding::Utf16LeBom);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return strict(UTF_16BE, rest, TextEncoding::Utf16BeBom);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_owned(), TextEncoding::Utf8));
    }
    // Windows-1252 maps every byte to a character, so this cannot fail.
    let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
    Ok((text.into_owned(), TextEncoding::Windows1252))
}

fn strict(
    encoding: &'static Encoding,
    bytes: &[u8],
    tag: TextEncoding,
) -> Result<(String, TextEncoding), TextError> {
    match encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok((text.into_owned(), tag)),
        None => Err(TextError::Malformed(tag)),
    }
}

/// Encodes text in `encoding`, with its byte-order mark where it had one.
pub fn encode(text: &str, encoding: TextEncoding) -> Result<Vec<u8>, TextError> {
    match encoding {
        TextEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
        TextEncoding::Utf8Bom => {
            let mut out = vec![0xEF, 0xBB, 0xBF];
            out.extend_from_slice(text.as_bytes());
            Ok(out)
        }
        TextEncoding::Utf16LeBom => {
            let mut out = vec![0xFF, 0xFE];
            for unit in text.encode_utf16() {
                out.extend_from_slice(&unit.to_le_bytes());
            }
            Ok(out)
        }
        TextEncoding::Utf16BeBom => {
            let mut out = vec![0xFE, 0xFF];
            for unit in text.encode_utf16() {
                out.extend_from_slice(&unit.to_be_bytes());
            }
            Ok(out)
        }
        TextEncoding::Windows1252 => {
            // encoding_rs would silently write "&#NNNN;" for unmappable characters:
            // refuse instead, so nothing is ever written differently from what was asked.
            let mut out = Vec::with_capacity(text.len());
            for ch in text.chars() {
                let mut buf = [0u8; 4];
                let (bytes, _, had_errors) = WINDOWS_1252.encode(ch.encode_utf8(&mut buf));
                if had_errors {
                    return Err(TextError::Unrepresentable(ch, encoding));
                }
                out.extend_from_slice(&bytes);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_bytes_decode_to_their_characters_and_back() {
        // 0x80 is the euro sign and 0xE9 is é in Windows-1252 (not in ISO-8859-1 for 0x80).
        let bytes = b"ServiceName=Caf\xE9 \x80\r\n";
        let (text, enc) = decode(bytes).unwrap();
        assert_eq!(enc, TextEncoding::Windows1252);
        assert_eq!(text, "ServiceName=Café €\r\n");
        assert_eq!(encode(&text, enc).unwrap(), bytes);
    }

    #[test]
    fn utf16le_with_bom_round_trips() {
        let text = "[Connection Manager]\r\nServiceName=Ünïcode\r\n";
        let bytes = encode(text, TextEncoding::Utf16LeBom).unwrap();
        assert_eq!(&bytes[..4], &[0xFF, 0xFE, b'[', 0]);
        assert_eq!(
            decode(&bytes).unwrap(),
            (text.to_owned(), TextEncoding::Utf16LeBom)
        );
    }

    #[test]
    fn utf16be_with_bom_round_trips() {
        let text = "[ISP]\nPBFile=x.pbk\n";
        let bytes = encode(text, TextEncoding::Utf16BeBom).unwrap();
        assert_eq!(&bytes[..4], &[0xFE, 0xFF, 0, b'[']);
        assert_eq!(decode(&bytes).unwrap().1, TextEncoding::Utf16BeBom);
    }

    #[test]
    fn odd_length_utf16_is_an_error() {
        assert_eq!(
            decode(&[0xFF, 0xFE, b'a']),
            Err(TextError::Malformed(TextEncoding::Utf16LeBom))
        );
    }

    #[test]
    fn unrepresentable_character_in_ansi_is_refused() {
        assert_eq!(
            encode("a漢", TextEncoding::Windows1252),
            Err(TextError::Unrepresentable('漢', TextEncoding::Windows1252))
        );
    }
}
