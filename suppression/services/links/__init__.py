"""What a link lets its holder do: opt out, change preferences, confirm an opt-in."""
