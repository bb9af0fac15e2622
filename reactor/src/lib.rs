//! corio-reactor: placeholder; see the callback-model issue.
