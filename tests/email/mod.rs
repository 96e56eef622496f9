//! The email channel with the application: real servers from `helpdesk_testkit` (Dovecot for
//! IMAP, an SMTP sink in the test process).

// Acknowledgements, loop protection, bounces, out-of-office replies.
mod auto;
// A real IMAP mailbox drained by the application's intake, across restarts.
mod imap;
// A new user's whole mailbox, with a crash in the middle of a batch.
mod mailbox;
// Agents' replies through a real SMTP conversation, threaded back.
mod smtp;
// Several mailboxes: departments, From addresses, signatures, one server down, mail to two.
mod mailboxes;
