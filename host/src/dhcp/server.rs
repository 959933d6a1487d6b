//! The built-in DHCPv4 server.
