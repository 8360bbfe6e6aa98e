"""The print channel: print batches for a letter shop (hot folder or SFTP), confirmed by acknowledgement."""
