//! Gzip-transparent input: a reader that inflates when the stream starts with the gzip magic.

use std::io::{BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

/// Wrap `r`, decompressing if it is gzip (detected from the first two bytes, not the name).
pub fn maybe_gzip<R: Read + 'static>(r: R) -> std::io::Result<Box<dyn BufRead>> {
    let mut br = BufReader::with_capacity(1 << 16, r);
    let head = br.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(br),
        )))
    } else {
        Ok(Box::new(br))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn plain_and_gzipped_input_read_the_same() {
        let text = b"a,b\n1,2\n".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        for input in [text.clone(), gz] {
            let mut s = String::new();
            maybe_gzip(std::io::Cursor::new(input))
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(s.as_bytes(), &text[..]);
        }
    }
}
