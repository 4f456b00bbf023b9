//! The Bluetooth Heart Rate Measurement characteristic (UUID 0x2A37), as any chest strap
//! notifies it and a gateway forwards it unchanged. Layout from the Bluetooth SIG's GATT
//! characteristic definition (`org.bluetooth.characteristic.heart_rate_measurement`, mirrored
//! at <https://github.com/oesmith/gatt-xml/blob/master/org.bluetooth.characteristic.heart_rate_measurement.xml>):
//!
//! - byte 0, flags: bit 0 value format (0 = uint8 bpm, 1 = uint16 little-endian bpm); bits 1–2
//!   sensor contact (bit 2 = supported, bit 1 = detected); bit 3 energy expended present
//!   (uint16, kJ); bit 4 RR intervals present; bits 5–7 reserved (ignored);
//! - the heart rate, 1 or 2 bytes;
//! - energy expended, 2 bytes, if flagged;
//! - RR intervals, the rest of the value as uint16 little-endian in 1/1024 s, as many as fit.

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartRate {
    /// Beats per minute.
    pub bpm: u16,
    /// Beat-to-beat intervals, ms (rounded from 1/1024 s).
    pub rr_ms: Vec<u32>,
    /// Whether the strap touches skin: `None` when it cannot tell.
    pub contact: Option<bool>,
}

/// Decode a 0x2A37 value.
pub fn decode(v: &[u8]) -> Result<HeartRate, String> {
    let Some(&flags) = v.first() else {
        return Err("empty heart-rate measurement".into());
    };
    let mut at = 1;
    let mut take = |n: usize, what: &str| -> Result<&[u8], String> {
        let s = v.get(at..at + n).ok_or_else(|| {
            format!(
                "{} bytes end before the {what} (flags {flags:#04x})",
                v.len()
            )
        })?;
        at += n;
        Ok(s)
    };
    let bpm = if flags & 0x01 == 0 {
        u16::from(take(1, "8-bit heart rate")?[0])
    } else {
        let b = take(2, "16-bit heart rate")?;
        u16::from_le_bytes([b[0], b[1]])
    };
    if flags & 0x08 != 0 {
        take(2, "energy expended")?;
    }
    let mut rr_ms = Vec::new();
    if flags & 0x10 != 0 {
        let rest = &v[at.min(v.len())..];
        if !rest.len().is_multiple_of(2) {
            return Err(format!("{} RR bytes: not whole uint16 values", rest.len()));
        }
        rr_ms = rest
            .chunks_exact(2)
            .map(|c| (f64::from(u16::from_le_bytes([c[0], c[1]])) * 1000.0 / 1024.0).round() as u32)
            .collect();
    }
    let contact = (flags & 0x04 != 0).then_some(flags & 0x02 != 0);
    Ok(HeartRate {
        bpm,
        rr_ms,
        contact,
    })
}

/// Encode (for replays and tests): 8-bit bpm when it fits, contact supported and detected, RR
/// intervals when given.
pub fn encode(bpm: u16, rr_ms: &[u32]) -> Vec<u8> {
    let mut flags = 0x06u8;
    let mut out = Vec::with_capacity(3 + 2 * rr_ms.len());
    out.push(0);
    if let Ok(b) = u8::try_from(bpm) {
        out.push(b);
    } else {
        flags |= 0x01;
        out.extend_from_slice(&bpm.to_le_bytes());
    }
    if !rr_ms.is_empty() {
        flags |= 0x10;
        for &ms in rr_ms {
            let v = (f64::from(ms) * 1024.0 / 1000.0).round().min(65_535.0) as u16;
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out[0] = flags;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_combinations_decode_as_the_specification_lays_them_out() {
        // uint8 bpm, no contact feature, nothing else.
        assert_eq!(
            decode(&[0x00, 72]),
            Ok(HeartRate {
                bpm: 72,
                rr_ms: vec![],
                contact: None
            })
        );
        // uint16 bpm, contact supported but not detected, energy expended, two RR intervals
        // (1024/1024 s = 1000 ms, 512/1024 s = 500 ms).
        let v = [0x1d, 0x2c, 0x01, 0x10, 0x00, 0x00, 0x04, 0x00, 0x02];
        assert_eq!(
            decode(&v),
            Ok(HeartRate {
                bpm: 300,
                rr_ms: vec![1000, 500],
                contact: Some(false)
            })
        );
        // Contact detected, RR only; reserved bits ignored.
        assert_eq!(decode(&[0xf6, 150, 0x9a, 0x01]).unwrap().rr_ms, vec![400]);
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x01, 0x50]).unwrap_err().contains("16-bit"));
        assert!(decode(&[0x10, 80, 0x01]).unwrap_err().contains("RR"));
        assert!(decode(&[0x08, 80, 0x01]).unwrap_err().contains("energy"));
    }

    #[test]
    fn encoding_round_trips_to_the_millisecond() {
        for (bpm, rr) in [
            (61u16, vec![]),
            (183, vec![327, 328, 1200]),
            (260, vec![231]),
        ] {
            let d = decode(&encode(bpm, &rr)).unwrap();
            assert_eq!((d.bpm, d.rr_ms, d.contact), (bpm, rr, Some(true)));
        }
    }
}
