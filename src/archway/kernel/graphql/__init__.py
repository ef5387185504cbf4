"""What every context's GraphQL part shares: the caller, money, Relay connections and the one
mapping from Archway's errors to GraphQL errors (the twin of ``kernel.http.problems``)."""
