"""The shared kernel: building blocks every context and topology uses; it imports no context."""
