"""One HQL statement -> one read-only statement for PostgreSQL or SQLite, confined to an organisation.

The statement is parsed as ClickHouse SQL by sqlglot (never by hand) and checked node by node against
allow-lists: anything not named here is refused with :class:`HqlError` (a 400 saying why), so a construct
sqlglot learns tomorrow is refused until it is added, rather than passed through.

What passes:

* exactly one SELECT (subqueries and self-joins allowed; no WITH, UNION, SETTINGS, FORMAT, INTO);
* every table is ``request_response_rmt`` (no database prefix, no table functions); each is replaced
  by a subquery over heliport's ``requests`` that exposes the documented columns
  (``hql.schema.view_sql``) and holds ``org_id = <bound organisation>``; on PostgreSQL the
  statement also runs under row-level security, so the organisation is kept twice;
* columns of that table, or aliases the statement defines; ``properties['key']`` and ``scores['key']``
  with a literal key;
* the functions of :data:`FUNCTIONS` (ClickHouse names), written for the target database: aggregates,
  arithmetic, text, conditionals and the date functions of Helicone's examples (``now()``,
  ``toDateTime64``, ``toDate``, ``toStartOfHour`` ..., ``x - INTERVAL n DAY``).

ClickHouse lets a SELECT use an alias in the same SELECT list and in WHERE (Helicone's error-rate
example divides two aliases); PostgreSQL does not, so such references are replaced by the aliased
expression (as ClickHouse resolves them: an alias wins over a column of the same name).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from heliport.errors import RequestError
from heliport.hql.schema import COLUMNS, MAP_COLUMNS, SESSION_KEYS, TABLE, view_sql

__all__ = ["FUNCTIONS", "MAX_SQL_CHARS", "CompiledQuery", "HqlError", "compile_hql"]

logger = logging.getLogger("heliport.hql")

DialectName = Literal["postgres", "sqlite"]

#: Longest statement accepted (characters).
MAX_SQL_CHARS: Final = 100_000
_COLUMN_NAMES: Final = frozenset(c.name for c in COLUMNS)
_INTERVAL_UNITS: Final = frozenset({"SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "YEAR"})


class HqlError(RequestError):
    """A statement HQL refuses, or that the database refused: a 400 naming ``sql``."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Invalid sql: {message}", param="sql")


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    sql: str
    #: How many bound values the statement takes: the organisation's id, this many times (SQLite's
    #: ``?`` are positional; PostgreSQL's are all ``$1``).
    org_params: int
    #: Output columns that are maps (answered as JSON objects rather than their stored text).
    map_outputs: frozenset[str]


# Node types that may appear anywhere, as sqlglot parses them from ClickHouse SQL.
_STRUCTURE: Final[tuple[type[exp.Expr], ...]] = (
    exp.Select, exp.From, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
    exp.Alias, exp.TableAlias, exp.Column, exp.Identifier, exp.Star, exp.Literal, exp.Null, exp.Boolean,
    exp.Paren, exp.Neg, exp.Not, exp.And, exp.Or, exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.GT, exp.GTE, exp.LT,
    exp.LTE, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod,
    exp.Case, exp.If, exp.Tuple, exp.Distinct, exp.Subquery, exp.Join, exp.Table, exp.Bracket, exp.Interval,
    exp.Var, exp.Cast, exp.DataType, exp.DataTypeParam, exp.DPipe,
)  # fmt: skip
# Functions sqlglot already knows, which it writes correctly for both databases.
_PORTABLE: Final[tuple[type[exp.Expr], ...]] = (
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Abs, exp.Floor, exp.Ceil, exp.Coalesce, exp.Nullif,
    exp.Greatest, exp.Least, exp.Lower, exp.Upper, exp.Length, exp.Concat, exp.Substring, exp.CountIf,
    exp.Round, exp.Trim,
)  # fmt: skip

#: The functions HQL accepts, by their ClickHouse names (listed in the 400 for any other).
FUNCTIONS: Final = (
    "count", "countIf", "sum", "sumIf", "avg", "avgIf", "min", "max", "uniq", "uniqExact", "countDistinct",
    "round", "abs", "floor", "ceil", "coalesce", "ifNull", "nullIf", "greatest", "least", "if", "multiIf",
    "lower", "upper", "length", "concat", "substring", "trim", "toString", "toInt64", "toFloat64",
    "now", "today", "toDate", "toDateTime", "toDateTime64", "toStartOfMinute", "toStartOfHour",
    "toStartOfDay", "toStartOfWeek", "toStartOfMonth", "toStartOfYear",
)  # fmt: skip


#: Statements up to this long are remembered once compiled (dashboards re-run the same few); longer ones are
#: compiled each time, so the cache holds at most ``_CACHED * _CACHEABLE_CHARS`` characters of text.
_CACHEABLE_CHARS: Final = 8_000
_CACHED: Final = 256


def compile_hql(sql: str, dialect: DialectName) -> CompiledQuery:
    """``sql`` (ClickHouse) checked and written for ``dialect``; :class:`HqlError` if it is refused.

    Compiling is pure in (statement, database) — the organisation is a bound value, never part of the
    text — and costs 8-24 ms of sqlglot per statement (bench/hql.py), most of a short query's time, so a
    statement that compiled is remembered; a refused one is not (the error is raised again each time)."""
    if len(sql) <= _CACHEABLE_CHARS:
        return _compile_cached(sql, dialect)
    return _compile_checked(sql, dialect)


@functools.lru_cache(maxsize=_CACHED)
def _compile_cached(sql: str, dialect: DialectName) -> CompiledQuery:
    return _compile_checked(sql, dialect)


def _compile_checked(sql: str, dialect: DialectName) -> CompiledQuery:
    try:
        return _compile(sql, dialect)
    except HqlError:
        raise
    except RecursionError:
        raise HqlError("it is nested too deeply.") from None
    except Exception as exc:  # sqlglot failing on input it has no rule for: still the caller's 400
        logger.warning("HQL statement not compiled", exc_info=True)
        raise HqlError(f"it could not be compiled ({_first_line(exc)}).") from None


def _compile(sql: str, dialect: DialectName) -> CompiledQuery:
    if not sql.strip():
        raise HqlError("the statement is empty.")
    if len(sql) > MAX_SQL_CHARS:
        raise HqlError(f"the statement is longer than {MAX_SQL_CHARS} characters.")
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except (ParseError, TokenError) as exc:
        raise HqlError(f"it does not parse as ClickHouse SQL ({_first_line(exc)}).") from None
    except RecursionError:
        raise HqlError("it is nested too deeply.") from None
    if len(statements) != 1:
        raise HqlError(f"exactly one statement is allowed; found {len(statements)}.")
    tree = statements[0]
    if not isinstance(tree, exp.Select):
        raise HqlError(f"only SELECT is allowed; this is {_kind(tree)}.")
    _check(tree)
    for select in list(tree.find_all(exp.Select)):
        _expand_aliases(select)
    tree = _translate(tree, dialect)
    maps = _map_outputs(tree)
    count = _confine(tree, dialect)
    try:
        text = tree.sql(dialect=dialect)
    except Exception as exc:  # sqlglot's generator refusing a construct for the target database
        raise HqlError(f"it cannot be run on this database ({_first_line(exc)}).") from None
    return CompiledQuery(text, count, maps)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def _kind(node: exp.Expr) -> str:
    return node.key.upper()


# --- checks ----------------------------------------------------------------------------------------------


def _check(tree: exp.Select) -> None:
    aliases = {a.alias.lower() for a in tree.find_all(exp.Alias) if a.alias}
    table_names = {TABLE}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
            raise HqlError(f"only the table {TABLE} may be read; found {table.sql('clickhouse')[:100]}.")
        if table.name.lower() != TABLE:
            raise HqlError(f"only the table {TABLE} may be read; found {table.name}.")
        if table.alias:
            table_names.add(table.alias.lower())
    for sub in tree.find_all(exp.Subquery):
        if sub.alias:
            table_names.add(sub.alias.lower())
    for select in tree.find_all(exp.Select):
        for arg in ("with_", "with", "settings", "format", "into", "windows", "qualify", "prewhere", "sample"):
            if select.args.get(arg):
                raise HqlError(f"{arg.rstrip('_').upper()} is not allowed.")
        if select.args.get("kind") or select.args.get("operation_modifiers"):
            raise HqlError("SELECT modifiers are not allowed.")
    for node in tree.walk():
        if isinstance(node, (exp.Anonymous, exp.CombinedAggFunc)):
            name = str(node.this)
            if name.lower() not in _ANONYMOUS:
                raise _unknown_function(name)
        elif isinstance(node, exp.ApproxDistinct):
            continue
        elif isinstance(node, exp.TimestampTrunc):
            unit = node.text("unit").upper()
            if unit not in _INTERVAL_UNITS:
                raise HqlError(f"truncating to {unit or 'that unit'} is not supported.")
        elif isinstance(node, _PORTABLE):
            continue
        elif isinstance(node, _STRUCTURE):
            pass
        elif isinstance(node, exp.Func):
            raise _unknown_function(node.sql_name())
        else:
            raise HqlError(f"{_kind(node)} is not allowed in HQL.")
        if isinstance(node, exp.Column):
            _check_column(node, aliases, table_names)
        elif isinstance(node, exp.Bracket):
            _map_key(node)
        elif isinstance(node, exp.Interval):
            _interval(node)
        elif isinstance(node, exp.Join) and (
            node.args.get("using") or node.method or not isinstance(node.this, (exp.Table, exp.Subquery))
        ):
            raise HqlError("only JOIN of request_response_rmt (or a subquery of it) ... ON is allowed.")


def _unknown_function(name: str) -> HqlError:
    return HqlError(f"the function {name} is not allowed; HQL allows {', '.join(FUNCTIONS)}.")


def _check_column(column: exp.Column, aliases: set[str], tables: set[str]) -> None:
    if column.args.get("db") or column.args.get("catalog"):
        raise HqlError(f"unknown column {column.sql('clickhouse')[:100]}.")
    qualifier = column.table.lower()
    if qualifier and qualifier not in tables:
        raise HqlError(f"unknown table {column.table} (columns are read from {TABLE}).")
    if isinstance(column.this, exp.Star):
        return
    name = column.name.lower()
    if name not in _COLUMN_NAMES and name not in aliases:
        raise HqlError(f"unknown column {column.name}; {TABLE} has {', '.join(sorted(_COLUMN_NAMES))}.")


def _map_key(bracket: exp.Bracket) -> tuple[str, str]:
    """The map column and key of ``properties['key']``; any other subscript is refused."""
    target, keys = bracket.this, bracket.expressions
    if not isinstance(target, exp.Column) or target.name.lower() not in MAP_COLUMNS:
        raise HqlError("only properties['key'] and scores['key'] may be subscripted.")
    if len(keys) != 1 or not isinstance(keys[0], exp.Literal) or not keys[0].is_string:
        raise HqlError(f"{target.name}[...] takes one string literal key.")
    return target.name.lower(), keys[0].this


def _interval(node: exp.Interval) -> tuple[int, str]:
    unit = node.text("unit").upper()
    unit = unit[:-1] if unit.endswith("S") else unit
    value = node.this
    if not isinstance(value, exp.Literal) or unit not in _INTERVAL_UNITS:
        raise HqlError("an INTERVAL is a number and a unit (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR).")
    try:
        return int(str(value.this)), unit
    except ValueError:
        raise HqlError("an INTERVAL's amount is a whole number.") from None


# --- aliases ----------------------------------------------------------------------------------------------


def _expand_aliases(select: exp.Select) -> None:
    """Replace references to this SELECT's own aliases (outside their definitions) with the expression."""
    scope = _Aliases()
    for item in select.expressions:
        if isinstance(item, exp.Alias):
            item.set("this", scope.expand(item.this))
            scope.define(item.alias, item.this)
        else:
            scope.expand(item)
    if not scope.defined:
        return
    for arg in ("where", "having"):
        clause = select.args.get(arg)
        if clause is not None:
            clause.set("this", scope.expand(clause.this))
    group = select.args.get("group")
    if group is not None:
        group.set("expressions", [scope.expand(e) for e in group.expressions])
    order = select.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            inner = ordered.this
            # A bare alias in ORDER BY names the output column in both databases: kept as written.
            if not (isinstance(inner, exp.Column) and not inner.table and inner.name.lower() in scope.defined):
                ordered.set("this", scope.expand(inner))


#: Most nodes alias expansion may copy into one statement: aliases of aliases double at each step, so
#: a short statement could otherwise expand past any memory.
_MAX_EXPANDED_NODES: Final = 20_000


class _Aliases:
    def __init__(self) -> None:
        self.defined: dict[str, exp.Expr] = {}
        self._sizes: dict[str, int] = {}
        self._copied = 0

    def define(self, name: str, expression: exp.Expr) -> None:
        self.defined[name.lower()] = expression
        self._sizes[name.lower()] = sum(1 for _ in expression.walk())

    def expand(self, node: exp.Expr) -> exp.Expr:
        """``node`` with unqualified references to defined aliases replaced, not entering subqueries."""
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in self.defined:
            name = node.name.lower()
            self._copied += self._sizes[name]
            if self._copied > _MAX_EXPANDED_NODES:
                raise HqlError("its aliases expand to too large a statement.")
            return exp.Paren(this=self.defined[name].copy())
        for child in list(node.iter_expressions()):
            if isinstance(child, (exp.Select, exp.Subquery)):
                continue
            replaced = self.expand(child)
            if replaced is not child:
                child.replace(replaced)
        return node


# --- translation ------------------------------------------------------------------------------------------


#: The prefix of the SQLite helper functions (``hql.sqlite_functions``), which user SQL cannot name.
_INTERNAL: Final = "hql_"


def _fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _args(node: exp.Expr) -> list[exp.Expr]:
    return list(node.expressions) if isinstance(node, (exp.Anonymous, exp.CombinedAggFunc)) else []


def _arity(name: str, args: list[exp.Expr], *counts: int) -> None:
    if len(args) not in counts:
        wanted = " or ".join(str(c) for c in counts)
        raise HqlError(f"{name} takes {wanted} argument{'s' if counts != (1,) else ''}; got {len(args)}.")


def _if(cond: exp.Expr, then: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Expr:
    return exp.If(this=cond, true=then, false=otherwise if otherwise is not None else exp.Null())


def _trunc(unit: str, value: exp.Expr, dialect: DialectName) -> exp.Expr:
    if dialect == "sqlite":
        return _fn("hql_trunc", value, exp.Literal.string(unit))
    return exp.TimestampTrunc(this=value, unit=exp.Var(this=unit))


def _to_datetime(value: exp.Expr, dialect: DialectName) -> exp.Expr:
    if dialect == "sqlite":
        return _fn("hql_datetime", value)
    return exp.Cast(this=value, to=exp.DataType.build("TIMESTAMPTZ"))


_Translator = Callable[[str, list[exp.Expr], DialectName], exp.Expr]


def _anonymous_translators() -> dict[str, _Translator]:
    def cast(to: str) -> _Translator:
        def build(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
            _arity(n, a, 1)
            return exp.Cast(this=a[0], to=exp.DataType.build(to))

        return build

    def trunc(unit: str) -> _Translator:
        def build(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
            _arity(n, a, 1)
            return _trunc(unit, a[0], d)

        return build

    def multi_if(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        if len(a) < 3 or len(a) % 2 == 0:
            raise HqlError("multiIf takes pairs of condition and value, then a default.")
        ifs = [exp.If(this=a[i], true=a[i + 1]) for i in range(0, len(a) - 1, 2)]
        return exp.Case(ifs=ifs, default=a[-1])

    def to_date(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        _arity(n, a, 1)
        if d == "sqlite":
            return _fn("hql_date", a[0])
        return exp.Cast(this=_to_datetime(a[0], d), to=exp.DataType.build("DATE"))

    def to_datetime(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        _arity(n, a, 1, 2)
        if len(a) == 2 and not (isinstance(a[1], exp.Literal) and not a[1].is_string):
            raise HqlError(f"{n}'s precision is a number.")
        return _to_datetime(a[0], d)

    def now(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        _arity(n, a, 0)
        return _fn("hql_now") if d == "sqlite" else exp.CurrentTimestamp()

    def today(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        _arity(n, a, 0)
        return _fn("hql_today") if d == "sqlite" else exp.CurrentDate()

    def if_(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        _arity(n, a, 2)
        return exp.Coalesce(this=a[0], expressions=[a[1]]) if n == "ifnull" else exp.Nullif(this=a[0], expression=a[1])

    def agg_if(kind: type[exp.Sum] | type[exp.Avg]) -> _Translator:
        def build(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
            _arity(n, a, 2)
            return kind(this=_if(a[1], a[0]))

        return build

    def distinct(n: str, a: list[exp.Expr], d: DialectName) -> exp.Expr:
        if not a:
            raise HqlError(f"{n} takes at least one argument.")
        return exp.Count(this=exp.Distinct(expressions=a))

    return {
        "tostring": cast("TEXT"),
        "toint64": cast("BIGINT"),
        "tofloat64": cast("DOUBLE"),
        "multiif": multi_if,
        "todate": to_date,
        "todatetime": to_datetime,
        "todatetime64": to_datetime,
        "now": now,
        "today": today,
        "ifnull": if_,
        "nullif": if_,
        "sumif": agg_if(exp.Sum),
        "avgif": agg_if(exp.Avg),
        "uniqexact": distinct,
        "countdistinct": distinct,
        "tostartofminute": trunc("MINUTE"),
        "tostartofhour": trunc("HOUR"),
        "tostartofday": trunc("DAY"),
        "tostartofweek": trunc("WEEK"),
        "tostartofmonth": trunc("MONTH"),
        "tostartofyear": trunc("YEAR"),
    }


_ANONYMOUS: Final = _anonymous_translators()


def _translate(tree: exp.Select, dialect: DialectName) -> exp.Select:
    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, (exp.Anonymous, exp.CombinedAggFunc)):
            name = str(node.this)
            if name.startswith(_INTERNAL):
                return node  # written by this translation (the SQLite helpers)
            return _ANONYMOUS[name.lower()](name, _args(node), dialect)
        if isinstance(node, exp.ApproxDistinct):
            return exp.Count(this=exp.Distinct(expressions=[node.this]))
        if isinstance(node, exp.Count) and node.this is None and not node.expressions:
            return exp.Count(this=exp.Star())
        if isinstance(node, exp.TimestampTrunc):
            return _trunc(node.text("unit").upper(), node.this, dialect)
        if isinstance(node, exp.Round) and dialect == "postgres" and node.args.get("decimals") is not None:
            # PostgreSQL rounds to places only numerics (ClickHouse any number).
            return exp.Round(
                this=exp.Cast(this=node.this, to=exp.DataType.build("DECIMAL")), decimals=node.args["decimals"]
            )
        if isinstance(node, exp.Bracket):
            return _map_get(node, dialect)
        if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval) and dialect == "sqlite":
            amount, unit = _interval(node.expression)
            signed = amount if isinstance(node, exp.Add) else -amount
            return _fn("hql_add", node.this, exp.Literal.number(signed), exp.Literal.string(unit))
        if isinstance(node, exp.Interval):
            amount, unit = _interval(node)
            parent = node.parent
            if not (isinstance(parent, (exp.Add, exp.Sub)) and parent.expression is node):
                raise HqlError("an INTERVAL may only be added to or subtracted from a time.")
            if dialect == "sqlite":
                kept: exp.Expr = node
                return kept  # its Add or Sub, next, becomes hql_add
            return exp.Interval(this=exp.Literal.string(str(amount)), unit=exp.Var(this=unit))
        return node

    # Children first (a node's descendants follow it in pre-order, so reversed they come before it):
    # each rewrite then builds on its arguments' rewritten forms.
    for node in reversed(list(tree.walk(bfs=False))):
        if node is tree:
            continue
        replaced = rewrite(node)
        if replaced is not node:
            node.replace(replaced)
    return tree


def _map_get(bracket: exp.Bracket, dialect: DialectName) -> exp.Expr:
    column, key = _map_key(bracket)
    if column == "properties":
        # Custom property names are stored in lower case; the session keys under their documented names.
        key = SESSION_KEYS[key.lower()][0] if key.lower() in SESSION_KEYS else key.lower()
    target = bracket.this
    if dialect == "postgres":
        text = exp.Paren(this=exp.JSONExtractScalar(this=target, expression=exp.Literal.string(key)))
        # Scores are numbers (ClickHouse: Map(String, Int64)); properties are text.
        return text if column == "properties" else exp.Cast(this=text, to=exp.DataType.build("DOUBLE"))
    return _fn("hql_map_get", target, exp.Literal.string(key))


def _map_outputs(tree: exp.Select) -> frozenset[str]:
    found: set[str] = set()
    for item in tree.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)):
            found |= MAP_COLUMNS
        elif isinstance(inner, exp.Column) and inner.name.lower() in MAP_COLUMNS:
            found.add(item.alias_or_name)
    return frozenset(found)


# --- confinement ------------------------------------------------------------------------------------------


def _confine(tree: exp.Select, dialect: DialectName) -> int:
    """Replace every reference to the table by the organisation's subquery; how many there were."""
    placeholder = "$1" if dialect == "postgres" else "?"
    tables = list(tree.find_all(exp.Table))
    for table in tables:
        view = sqlglot.parse_one(view_sql(dialect, placeholder), read=dialect)
        assert isinstance(view, exp.Select)
        alias = table.alias or TABLE
        table.replace(exp.Subquery(this=view, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    if not tables:
        raise HqlError(f"the statement must read FROM {TABLE}.")
    return len(tables)
