"""Events to text: kdump lines, JSON lines, colour and summaries."""
