"""End-to-end tests: real rsync daemon, real relying-party validators (rpki-client, FORT), libfaketime."""
