//! The email crate's tests against real servers and real-world mail: IMAP intake on Dovecot,
//! parsing of the fixtures, SMTP delivery.

mod imap;
mod parse;
mod smtp;
