"""Work done outside a request, at the edge that commits: sending confirmation mails."""
