"""The sending platforms' feedback: bounces, complaints and unsubscribes that
arrive by webhook, recorded once per platform event id."""
