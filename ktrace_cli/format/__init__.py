"""The FreeBSD ktrace file format: constants, layouts, records, reader and writer."""
