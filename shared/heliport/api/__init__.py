"""The REST query API over the logs: Helicone's documented request, session, user and property
endpoints, answered from the log database with SQL built from a whitelist and bind parameters."""
