"""Storage: SQLAlchemy 2 Core (async) tables, repositories, migrations, one-time values."""
