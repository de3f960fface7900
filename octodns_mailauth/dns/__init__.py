"""DNS access: the Resolver protocol (`resolver`), the one dnspython client
(`live`) and the lock file of recorded answers (`lockfile`)."""
