//! The mapped-CSV importer: the input is a TOML column mapping, a NUL byte, then the CSV.
//! Without a NUL the CSV is read with a fixed mapping (x/y metres, seconds).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sideline_import::mapped::{Mapping, read};

const MAPPING: &str = r#"
player_column = "player"
time_column = "t"
time_format = "seconds"
x_column = "x"
y_column = "y"
"#;

fuzz_target!(|data: &[u8]| {
    let (mapping, csv) = match data.iter().position(|&b| b == 0) {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (MAPPING.to_string(), data),
    };
    let Ok(m) = Mapping::from_toml(&mapping) else {
        return;
    };
    if let Ok(d) = read(csv, &m, "fuzz") {
        common::run_dataset(&d);
    }
});
