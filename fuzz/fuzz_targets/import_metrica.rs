//! The Metrica raw-tracking CSV importer on arbitrary bytes, then the engine.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sideline_import::metrica::{MetricaOptions, read};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = read(data, &MetricaOptions::default()) {
        common::run_dataset(&d);
    }
});
