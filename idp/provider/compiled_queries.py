"""Querysets compiled to SQL once per process, then run with new values: the hot lookups.

Django compiles a queryset to SQL on every evaluation. For a lookup that joins four tables (an
access token with its client, person and account) that costs several times the query itself:
on userinfo and introspection it was the largest single cost of a request (1.8 ms of CPU
against 0.3 ms compiled once, measured in-process on PostgreSQL). A CompiledQuery keeps the SQL,
the column layout and the converters of one queryset shape and fills in new values, so each
request pays for running the query only. Rows become model instances exactly as the queryset
would make them, select_related objects included, through Django's own populators.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[tuple[int, ...], ...]  # where each value goes among the parameters
    own_columns: slice  # the main model's columns in a row
    attnames: list[str]
    converters: dict  # column position: (converters, expression), as Django's compiler makes them
    populators: list  # the select_related objects' builders


class CompiledQuery:
    """`first(*values)`: the first row of `build(*values)`, compiled once per database alias.

    `build` returns a sliced queryset (`[:1]`) whose values reach the SQL unchanged as query
    parameters (lookups such as `exact` on text or numbers). It is compiled with `placeholders`,
    distinct values no real one would equal, whose parameters are then swapped for the real
    values; a shape where a placeholder does not show among the parameters is refused at its
    first use instead of being run wrong.
    """

    def __init__(self, model: type[Model], build: Callable[..., QuerySet], *placeholders: object) -> None:
        self.model = model
        self.build = build
        self.placeholders = placeholders
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> _Compiled:
        compiler = self.build(*self.placeholders).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = []
        for placeholder in self.placeholders:
            positions = tuple(index for index, param in enumerate(params) if param == placeholder)
            if not positions:
                raise ValueError(f"{self.model.__name__}: a placeholder does not reach the SQL as a parameter")
            slots.append(positions)
        fields = compiler.klass_info["select_fields"]
        own_columns = slice(fields[0], fields[-1] + 1)
        return _Compiled(
            sql=sql,
            params=tuple(params),
            slots=tuple(slots),
            own_columns=own_columns,
            attnames=[column[0].target.attname for column in compiler.select[own_columns]],
            converters=compiler.get_converters([column[0] for column in compiler.select]),
            populators=get_related_populators(compiler.klass_info, compiler.select, alias),
        )

    def compiled(self, alias: str) -> _Compiled:
        if (compiled := self._compiled.get(alias)) is None:
            with self._lock:
                compiled = self._compiled.get(alias) or self._compile(alias)
                self._compiled[alias] = compiled
        return compiled

    def first(self, *values: object) -> Model | None:
        alias = router.db_for_read(self.model)
        compiled = self.compiled(alias)
        params = list(compiled.params)
        for positions, value in zip(compiled.slots, values, strict=True):
            for position in positions:
                params[position] = value
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:  # as SQLCompiler.apply_converters, with this thread's connection
            row = list(row)
            for position, (converters, expression) in compiled.converters.items():
                value = row[position]
                for converter in converters:
                    value = converter(value, expression, connection)
                row[position] = value
        instance = self.model.from_db(alias, compiled.attnames, row[compiled.own_columns])
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance
