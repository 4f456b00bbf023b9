//! Rows of the `acks` table: who acknowledged a player's alerts, and when (`AlertAck` records
//! of `sideline.acks.v1`, written by the alerter). Partitioned like the other tables by the
//! alert's team and session and the UTC date of the acknowledgement.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use sideline_wire::pb;

use crate::schema::{Origin, Table};

/// Acknowledgement rows.
#[derive(Debug, Default)]
pub struct AckRows {
    pub(crate) len: usize,
    alert_id: StringBuilder,
    player: StringBuilder,
    kind: StringBuilder,
    severity: StringBuilder,
    by: StringBuilder,
    at: TimestampMicrosecondBuilder,
    since: TimestampMicrosecondBuilder,
    kp: Int32Builder,
    ko: Int64Builder,
}

impl AckRows {
    /// Append one acknowledgement.
    pub fn push(&mut self, a: &pb::AlertAck, o: Origin) {
        self.len += 1;
        self.alert_id.append_value(&a.alert_id);
        self.player.append_value(&a.player_id);
        self.kind.append_value(&a.kind);
        self.severity.append_value(&a.severity);
        self.by.append_value(&a.by);
        self.at.append_value(a.at_us);
        self.since.append_value(a.since_us);
        self.kp.append_value(o.partition);
        self.ko.append_value(o.offset);
    }

    pub(crate) fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        self.len = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.alert_id.finish()),
            Arc::new(self.player.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.by.finish()),
            Arc::new(self.at.finish().with_timezone("UTC")),
            Arc::new(self.since.finish().with_timezone("UTC")),
            Arc::new(self.kp.finish()),
            Arc::new(self.ko.finish()),
        ];
        RecordBatch::try_new(Table::Acks.schema(), cols)
    }
}
