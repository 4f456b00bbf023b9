//! Kafka errors, by what the caller should do about them.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What a failed produce calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Transient (broker down, timeouts, leader moves): send again after a pause.
    Retry,
    /// The producer is unusable (fatal idempotence error, fenced, unknown producer id after a
    /// broker lost its state): build a new producer, then send again.
    RecreateProducer,
    /// This record can never be accepted (too large, not allowed): dead-letter it.
    Reject,
}

/// Classify a produce error.
pub fn classify(e: &KafkaError) -> Failure {
    let Some(code) = e.rdkafka_error_code() else {
        return Failure::Retry;
    };
    match code {
        RDKafkaErrorCode::Fatal
        | RDKafkaErrorCode::OutOfOrderSequenceNumber
        | RDKafkaErrorCode::DuplicateSequenceNumber
        | RDKafkaErrorCode::InvalidProducerEpoch
        | RDKafkaErrorCode::ProducerFenced
        | RDKafkaErrorCode::UnknownProducerId
        | RDKafkaErrorCode::InvalidProducerIdMapping
        | RDKafkaErrorCode::InconsistentGroupProtocol => Failure::RecreateProducer,
        RDKafkaErrorCode::MessageSizeTooLarge
        | RDKafkaErrorCode::InvalidMessage
        | RDKafkaErrorCode::InvalidMessageSize
        | RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::InvalidRecord
        | RDKafkaErrorCode::PolicyViolation => Failure::Reject,
        _ => Failure::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_what_the_caller_must_do() {
        assert_eq!(
            classify(&KafkaError::MessageProduction(
                RDKafkaErrorCode::BrokerTransportFailure
            )),
            Failure::Retry
        );
        assert_eq!(
            classify(&KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut
            )),
            Failure::Retry
        );
        assert_eq!(
            classify(&KafkaError::MessageProduction(
                RDKafkaErrorCode::OutOfOrderSequenceNumber
            )),
            Failure::RecreateProducer
        );
        assert_eq!(
            classify(&KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge
            )),
            Failure::Reject
        );
    }
}
