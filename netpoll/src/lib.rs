//! corio-netpoll: placeholder, filled by the netpoll issue.
