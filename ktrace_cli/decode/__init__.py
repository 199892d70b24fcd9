"""Records to events with meaning; pure, never touches a live process."""
