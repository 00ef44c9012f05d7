//! SaslHandshake (API 17) reaching dispatch: on a listener without SASL, or after
//! authentication without re-authentication. Kafka's `KafkaApis` answers
//! ILLEGAL_SASL_STATE; the SASL exchange itself lives in `security::sasl`.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use crate::error::Result;

pub fn handle(_req: SaslHandshakeRequest) -> Result<SaslHandshakeResponse> {
    Ok(SaslHandshakeResponse::default().with_error_code(crate::security::sasl::AFTER_AUTH_ERROR))
}
