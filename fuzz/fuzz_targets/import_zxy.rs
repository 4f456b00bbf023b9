//! The ZXY long-CSV importer on arbitrary bytes, then the engine on what it accepted.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sideline_import::zxy::{ZxyOptions, read};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = read(data, &ZxyOptions::default()) {
        common::run_dataset(&d);
    }
});
