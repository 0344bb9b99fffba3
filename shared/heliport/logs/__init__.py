"""Log records and the pipeline that turns them into queryable rows."""
