//! What ztpd binds a device to on an untrusted segment, where IOS XE and Arista ZTP carry
//! no device authentication: call-back tokens signed per tenant ([`token`]).

pub mod token;
