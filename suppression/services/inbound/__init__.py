"""What arrives at the service's inboxes: unsubscribe mails, whoever delivers them
(`POST /v1/inbound/mail`, or the mailbox poller)."""
