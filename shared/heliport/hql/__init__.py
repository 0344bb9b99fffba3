"""HQL, Helicone's query language: ClickHouse SQL over ``request_response_rmt``, run on heliport's log.

``hql.schema`` says which columns the table has and how each is read from heliport's ``requests``;
``hql.compile`` parses a statement (sqlglot, ClickHouse dialect), refuses anything but one SELECT over
that table with allowed functions, confines every reference to the table to one organisation and
writes the statement for PostgreSQL or SQLite; ``hql.sqlite_functions`` are the date helpers the SQLite
form calls. The routes are ``heliport.api.hql``. sqlglot is imported only by ``hql.compile``, which the
API imports on the first HQL call, so nothing else pays for it.
"""
