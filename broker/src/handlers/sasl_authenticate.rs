//! SaslAuthenticate (API 36) reaching dispatch: the client is already authenticated or
//! the listener has no SASL. Kafka's `KafkaApis` answers ILLEGAL_SASL_STATE.

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::error::Result;

pub fn handle(_req: SaslAuthenticateRequest) -> Result<SaslAuthenticateResponse> {
    Ok(SaslAuthenticateResponse::default()
        .with_error_code(crate::security::sasl::AFTER_AUTH_ERROR)
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        ))))
}
