"""`field__any=[values]`: membership in a list sent as ONE array parameter on PostgreSQL (`col = ANY(%s::type[])`)
instead of `__in`'s one placeholder per value. For the settlement hot path's sets of thousands of keys: psycopg
parses a statement's placeholders on the client each time, and `__in` with 2,000 keys costs more there than the
query does in the database. Elsewhere (SQLite) it is `IN (...)`, like `__in`. Registered on every field and relation
when this module is imported (common.apps)."""

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        field = self.lhs.output_field
        return "%s", [field.get_db_prep_value(v, connection, prepared=False) for v in value]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _rhs, values = self.process_rhs(compiler, connection)
        if not values:
            return "FALSE" if connection.vendor == "postgresql" else "0 = 1", list(lhs_params)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::{self.lhs.output_field.db_type(connection)}[])", [*lhs_params, list(values)]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations keep a lookup list of their own
