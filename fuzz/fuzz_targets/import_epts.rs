//! The EPTS importer: the input is `metadata.xml`, a NUL byte, then `tracking.txt`. Without a
//! NUL the whole input is tracking data read against a fixed, valid metadata file.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sideline_import::epts::{read, read_metadata};
use sideline_import::metrica::MetricaOptions;

const META: &str = r#"<main><Metadata>
  <GlobalConfig><FrameRate>25</FrameRate></GlobalConfig>
  <Sessions><Session><Start>2019-02-21T03:30:07.000Z</Start>
    <MatchParameters><Score idLocalTeam="B" idVisitingTeam="A"/></MatchParameters>
    <FieldSize><Width>100</Width><Height>50</Height></FieldSize></Session></Sessions>
  <Teams><Team id="A"/><Team id="B"/></Teams>
  <Players>
    <Player id="p1" teamId="A"><ShirtNumber>7</ShirtNumber></Player>
    <Player id="p2" teamId="B"><ShirtNumber>9</ShirtNumber></Player>
  </Players>
  <PlayerChannels>
    <PlayerChannel channelId="x" id="c1x" playerId="p1"/><PlayerChannel channelId="y" id="c1y" playerId="p1"/>
    <PlayerChannel channelId="x" id="c2x" playerId="p2"/><PlayerChannel channelId="y" id="c2y" playerId="p2"/>
  </PlayerChannels></Metadata>
  <DataFormatSpecifications>
    <DataFormatSpecification startFrame="1" endFrame="999999"><PlayerChannelRef playerChannelId="c1x"/><PlayerChannelRef playerChannelId="c1y"/><PlayerChannelRef playerChannelId="c2x"/><PlayerChannelRef playerChannelId="c2y"/></DataFormatSpecification>
  </DataFormatSpecifications></main>"#;

fuzz_target!(|data: &[u8]| {
    let (meta, tracking) = match data.iter().position(|&b| b == 0) {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => (META.to_string(), data),
    };
    let Ok(meta) = read_metadata(&meta) else {
        return;
    };
    for override_pitch in [false, true] {
        if let Ok(d) = read(tracking, &meta, &MetricaOptions::default(), override_pitch) {
            common::run_dataset(&d);
        }
    }
});
