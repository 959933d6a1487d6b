//! Device identity: what a request says about the device, normalised once at the edge so
//! policies and inventories compare like with like.

use std::fmt;
use std::net::IpAddr;

/// A 48-bit MAC address. Parses every form network gear prints
/// (`00:1C:73:00:00:01`, `00-1c-73-00-00-01`, `001c.7300.0001`, `001c73000001`) and
/// displays as lower-case colon-separated hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// Why a MAC did not parse. The message is shown to devices and operators as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("empty MAC address")]
    Empty,
    #[error("MAC address is {0} characters long; expected 12 hex digits such as 00:1c:73:00:00:01")]
    Length(usize),
    #[error(
        "MAC address {0:?} is not 12 hex digits such as 00:1c:73:00:00:01, 001c.7300.0001 or 001c73000001"
    )]
    Format(String),
}

impl Mac {
    pub fn from_octets(octets: [u8; 6]) -> Self {
        Mac(octets)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl std::str::FromStr for Mac {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(MacError::Empty);
        }
        // Longest accepted form is 17 characters (six pairs and five separators); reject
        // early so a 64 KiB header is not echoed back.
        if s.len() > 17 {
            return Err(MacError::Length(s.len()));
        }
        let bytes = s.as_bytes();
        let shape_ok = match bytes.len() {
            // 00:1c:73:00:00:01 or 00-1c-73-00-00-01: one separator kind, every third char.
            17 => {
                let sep = bytes[2];
                (sep == b':' || sep == b'-') && (2..17).step_by(3).all(|i| bytes[i] == sep)
            }
            // 001c.7300.0001
            14 => bytes[4] == b'.' && bytes[9] == b'.',
            12 => true,
            _ => false,
        };
        if !shape_ok {
            return Err(MacError::Format(s.to_owned()));
        }
        let mut out = [0u8; 6];
        let mut digits = bytes.iter().filter(|b| !matches!(b, b':' | b'-' | b'.'));
        for octet in &mut out {
            let (Some(hi), Some(lo)) = (digits.next(), digits.next()) else {
                return Err(MacError::Format(s.to_owned()));
            };
            let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo)) else {
                return Err(MacError::Format(s.to_owned()));
            };
            *octet = hi << 4 | lo;
        }
        if digits.next().is_some() {
            return Err(MacError::Format(s.to_owned()));
        }
        Ok(Mac(out))
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who a device says it is, after the vendor adapter normalised it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub mac: Option<Mac>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub software_version: Option<String>,
    pub source_ip: IpAddr,
    /// Further facts the dialect read (`hardware-version`, `pid`, `arch`, ...), in order.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
}

impl Identity {
    pub fn new(source_ip: IpAddr) -> Self {
        Identity {
            mac: None,
            serial: None,
            model: None,
            software_version: None,
            source_ip,
            extra: Vec::new(),
        }
    }

    /// A short label for log lines: serial, else MAC, else address.
    pub fn label(&self) -> String {
        match (&self.serial, &self.mac) {
            (Some(s), _) => s.clone(),
            (None, Some(m)) => m.to_string(),
            (None, None) => self.source_ip.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_common_form_is_one_mac() {
        let want = "00:1c:73:00:00:01";
        for form in [
            "00:1C:73:00:00:01",
            "00:1c:73:00:00:01",
            "001c.7300.0001",
            "001C.7300.0001",
            "001c73000001",
            "00-1c-73-00-00-01",
            "  00:1c:73:00:00:01 ",
        ] {
            let mac: Mac = form.parse().unwrap_or_else(|e| panic!("{form:?}: {e}"));
            assert_eq!(mac.to_string(), want, "{form:?}");
        }
    }

    #[test]
    fn garbage_is_refused_with_the_expected_format() {
        for bad in [
            "00:1c:73:00:00",
            "00:1c:73:00:00:0g",
            "00:1c-73:00:00:01",
            "001c.73000.001",
            "zzzzzzzzzzzz",
            "00:1c:73:00:00:01:02",
            "0:1c:73:00:00:01",
        ] {
            let err = bad.parse::<Mac>().expect_err(bad);
            assert!(
                err.to_string().contains("00:1c:73:00:00:01"),
                "{bad:?}: {err}"
            );
        }
        assert_eq!("".parse::<Mac>(), Err(MacError::Empty));
        assert_eq!(
            "x".repeat(65536).parse::<Mac>(),
            Err(MacError::Length(65536))
        );
    }
}
