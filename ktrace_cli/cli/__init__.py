"""The pyktrace and pykdump command lines."""
